"""Values typed into fields defined as data (`[{"name", "label", "type", "required", "choices"}]`):
a contact database's custom columns and a disposition option's form (campaigns, above this layer,
use it too). One validator; each caller words the problems its own way."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from conversa.contacts.phones import InvalidPhone, normalize_phone


@dataclass(frozen=True)
class FieldProblem:
    name: str
    label: str
    kind: str  # the field's type
    problem: Literal["unknown", "required", "invalid"]
    detail: str = ""  # why an "invalid" value is invalid


def clean_number(value: Any) -> int | float:
    """An int when the value is a whole number written without a point, else a finite float."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(_("not a number"))
    if isinstance(value, int) or (isinstance(value, str) and "." not in value and value.strip().lstrip("+-").isdigit()):
        return int(value)
    number = float(value)
    if not math.isfinite(number):  # "NaN", "1e999": JSON (and reports) cannot hold them
        raise ValueError(_("not a finite number"))
    return number


def _clean_value(spec: Mapping[str, Any], value: Any, *, max_text: int) -> Any:
    kind = spec.get("type", "text")
    if kind == "number":
        return clean_number(value)
    if kind == "email":
        try:
            validate_email(str(value))
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from exc
        return str(value)
    if kind == "date":
        return datetime.date.fromisoformat(str(value)).isoformat()
    if kind == "choice":
        choices = spec.get("choices", [])
        if value not in choices:
            raise ValueError(_("must be one of %(choices)s") % {"choices": ", ".join(map(str, choices))})
        return value
    if kind == "boolean":
        return bool(value)
    if kind == "phone":
        try:
            return normalize_phone(str(value))
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from exc
    return str(value)[:max_text]


def clean_values(specs: list[dict[str, Any]] | None, values: Mapping[str, Any], *, partial: bool = False,
                 keep_empty: bool = False, max_text: int = 500) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The cleaned values and every problem found (in field order, then unknown names).
    `partial`: absent fields are not required (an edit); `keep_empty`: an empty answer is kept as ""
    (clearing a contact's column) instead of left out."""
    defined = {spec["name"]: spec for spec in specs or []}
    problems: list[FieldProblem] = []
    cleaned: dict[str, Any] = {}
    for name, spec in defined.items():
        label, kind = str(spec.get("label", name)), str(spec.get("type", "text"))
        value = values.get(name)
        if value in (None, ""):
            if spec.get("required") and not (partial and name not in values):
                problems.append(FieldProblem(name=name, label=label, kind=kind, problem="required"))
            elif keep_empty and name in values:
                cleaned[name] = ""
            continue
        try:
            cleaned[name] = _clean_value(spec, value, max_text=max_text)
        except ValueError as exc:
            problems.append(FieldProblem(name=name, label=label, kind=kind, problem="invalid", detail=str(exc)))
    problems += [FieldProblem(name=name, label=name, kind="", problem="unknown") for name in values
                 if name not in defined]
    return cleaned, problems
