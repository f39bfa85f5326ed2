"""Custom columns edited as a form: one row of inputs per field (name, label, type, required,
choices) read into and written from the JSON list the models keep, `[{"name", "label", "type",
"required", "choices"}]`, so nothing that reads them changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

CONTACT_FIELD_TYPES = ("text", "number", "email", "date", "choice", "phone")
# A custom column may not shadow a column every contact has.
RESERVED_NAMES = frozenset({"phone", "first_name", "last_name", "email", "custom", "id", "whatsapp_user_id"})
BLANK_ROWS = 3
MAX_FIELDS = 100


class FieldSpecsWidget(forms.Widget):
    """A table of rows, one per field, plus BLANK_ROWS empty ones to add fields."""

    template_name = "contacts/widgets/field_specs.html"

    def __init__(self, *, types: tuple[str, ...], attrs: dict[str, Any] | None = None):
        super().__init__(attrs)
        self.types = types

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        specs = value if isinstance(value, list) else []
        rows = [{"name": str(s.get("name", "")), "label": str(s.get("label", "")),
                 "type": str(s.get("type", "text")), "required": bool(s.get("required")),
                 "choices": ", ".join(map(str, s.get("choices") or []))} for s in specs if isinstance(s, dict)]
        rows += [{"name": "", "label": "", "type": "text", "required": False, "choices": ""}] * BLANK_ROWS
        context["widget"].update({"rows": rows, "types": self.types, "count": len(rows)})
        return context

    def value_from_datadict(self, data: Mapping[str, Any], files: MultiValueDict, name: str) -> list[dict[str, Any]]:
        try:
            count = min(int(data.get(f"{name}-count", 0)), MAX_FIELDS + BLANK_ROWS)
        except (TypeError, ValueError):
            count = 0
        specs: list[dict[str, Any]] = []
        for i in range(count):
            prefix = f"{name}-{i}-"
            if data.get(prefix + "delete"):
                continue
            spec = {"name": str(data.get(prefix + "name", "")).strip(),
                    "label": str(data.get(prefix + "label", "")).strip(),
                    "type": str(data.get(prefix + "type", "text")).strip(),
                    "required": bool(data.get(prefix + "required")),
                    "choices": [c.strip() for c in str(data.get(prefix + "choices", "")).split(",") if c.strip()]}
            if not spec["name"] and not spec["label"] and not spec["choices"]:
                continue  # an unused blank row
            specs.append(spec)
        return specs


class FieldSpecsField(forms.Field):
    """The list of field definitions; each problem names the row and the field."""

    default_error_messages = {"invalid": gettext_lazy("Enter the fields as rows of the table.")}

    def __init__(self, *, types: tuple[str, ...] = CONTACT_FIELD_TYPES, reserved: frozenset[str] = RESERVED_NAMES,
                 **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", FieldSpecsWidget(types=types))
        super().__init__(**kwargs)
        self.types = types
        self.reserved = reserved

    def prepare_value(self, value: Any) -> Any:
        return value

    def clean(self, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(value) > MAX_FIELDS:
            raise forms.ValidationError(_("At most %(max)s fields.") % {"max": MAX_FIELDS})
        errors: list[str] = []
        seen: set[str] = set()
        cleaned: list[dict[str, Any]] = []
        for row, spec in enumerate(value, start=1):
            name = str(spec.get("name", ""))
            where = _("Row %(row)s (%(name)s)") % {"row": row, "name": name or "—"}
            if not name.isidentifier() or not name.isascii():
                errors.append(_("%(where)s: the name must be made of letters, digits and _, not starting with "
                                "a digit.") % {"where": where})
            elif name in self.reserved:
                errors.append(_("%(where)s: %(name)s is a column every contact already has.")
                              % {"where": where, "name": name})
            elif name in seen:
                errors.append(_("%(where)s: the name is used twice.") % {"where": where})
            seen.add(name)
            kind = spec.get("type", "text")
            if kind not in self.types:
                errors.append(_("%(where)s: the type must be one of %(types)s.")
                              % {"where": where, "types": ", ".join(self.types)})
            choices = list(spec.get("choices") or [])
            if kind == "choice" and not choices:
                errors.append(_("%(where)s: a choice field needs its choices, separated by commas.")
                              % {"where": where})
            entry: dict[str, Any] = {"name": name, "label": str(spec.get("label") or name), "type": kind,
                                     "required": bool(spec.get("required"))}
            if kind == "choice":
                entry["choices"] = choices
            cleaned.append(entry)
        if errors:
            raise forms.ValidationError(errors)
        return cleaned
