"""Back office for contact databases (with their custom columns) and contacts."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversa.contacts.models import Contact, ContactDatabase

FIELD_TYPES = {"text", "number", "email", "date", "choice"}


def validate_field_specs(specs: Any, types: set[str]) -> list[dict[str, Any]]:
    """[{"name", "label", "type", "required", "choices"}]: names unique identifiers, known types."""
    if not isinstance(specs, list):
        raise forms.ValidationError(_("Enter a list of field definitions."))
    names: set[str] = set()
    for spec in specs:
        if not isinstance(spec, dict) or not str(spec.get("name", "")).isidentifier():
            raise forms.ValidationError(_('Each field needs a "name" made of letters, digits and _.'))
        if spec["name"] in names:
            raise forms.ValidationError(_("Field %(name)s is defined twice.") % {"name": spec["name"]})
        names.add(spec["name"])
        kind = spec.get("type", "text")
        if kind not in types:
            raise forms.ValidationError(_("Field %(name)s: type must be one of %(types)s.")
                                        % {"name": spec["name"], "types": ", ".join(sorted(types))})
        if kind == "choice" and not (isinstance(spec.get("choices"), list) and spec["choices"]):
            raise forms.ValidationError(_('Field %(name)s: a choice field needs "choices": [...].')
                                        % {"name": spec["name"]})
    return specs


class ContactDatabaseForm(forms.ModelForm):
    class Meta:
        model = ContactDatabase
        fields = ["name", "fields"]
        help_texts = {"fields": _('Custom columns, e.g. [{"name": "dni", "label": "DNI", "type": "text", '
                                  '"required": false}, {"name": "plan", "label": "Plan", "type": "choice", '
                                  '"choices": ["basic", "pro"]}]. Types: text, number, email, date, choice.')}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["fields"] = validate_field_specs(data.get("fields") or [], FIELD_TYPES)
        except forms.ValidationError as exc:
            self.add_error("fields", exc)
        return data


@admin.register(ContactDatabase)
class ContactDatabaseAdmin(admin.ModelAdmin):
    form = ContactDatabaseForm
    list_display = ["name", "column_names", "contact_count", "created_at"]
    search_fields = ["name"]

    @admin.display(description=_("custom fields"))
    def column_names(self, obj: ContactDatabase) -> str:
        return ", ".join(f.get("label") or f.get("name", "") for f in obj.fields or [])

    @admin.display(description=_("contacts"))
    def contact_count(self, obj: ContactDatabase) -> int:
        return obj.contacts.count()


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["phone", "first_name", "last_name", "email", "database", "updated_at"]
    list_filter = ["database"]
    search_fields = ["phone", "first_name", "last_name", "email"]
    readonly_fields = ["created_at", "updated_at"]
