"""The side panel's Records: a disposition's form answers as the agent filled them in, with the
form's labels and formats (never the stored keys and raw JSON values)."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from conversa.campaigns.models import Disposition


def _shown(kind: str, value: Any) -> str:
    if kind == "boolean" or isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON keeps 240 typed in a number field as 240.0
    if isinstance(value, int | float):
        return formats.number_format(value)
    if kind == "date" and isinstance(value, str):
        try:
            return formats.date_format(datetime.date.fromisoformat(value), "SHORT_DATE_FORMAT")
        except ValueError:
            return value
    return str(value)


def labelled_answers(disposition: Disposition) -> list[tuple[str, str]]:
    """(label, shown value) in the form's order; answers to fields the form no longer has last,
    under their stored names."""
    answers = dict(disposition.form_answers or {})
    shown = []
    for spec in disposition.option.form_fields or []:
        name = spec.get("name")
        if name in answers and answers[name] not in ("", None):
            shown.append((str(spec.get("label") or name), _shown(str(spec.get("type", "text")), answers.pop(name))))
    shown.extend((str(name), _shown("", value)) for name, value in answers.items() if value not in ("", None))
    return shown
