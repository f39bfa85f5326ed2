"""Back office for contact databases (with their custom columns) and contacts."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from conversa.contacts.forms import CONTACT_FIELD_TYPES, FieldSpecsField
from conversa.contacts.models import Contact, ContactDatabase, ContactImport

FIELD_TYPES = set(CONTACT_FIELD_TYPES)


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

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The custom columns as a table of rows (contacts.forms), stored as the same JSON list.
        self.fields["fields"] = FieldSpecsField(label=_("custom fields"), help_text=_(
            "One row per column. A blank row adds one; tick Remove to delete one (contacts keep their values)."))


@admin.register(ContactDatabase)
class ContactDatabaseAdmin(admin.ModelAdmin):
    form = ContactDatabaseForm
    list_display = ["name", "column_names", "contact_count", "created_at", "tools"]
    search_fields = ["name"]

    @admin.display(description=_("contacts, import and export"))
    def tools(self, obj: ContactDatabase) -> str:
        return format_html('<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
                           reverse("contact-list", args=[obj.pk]), _("Contacts"),
                           reverse("contact-import", args=[obj.pk]), _("Import"),
                           reverse("contact-export", args=[obj.pk]), _("Export CSV"))

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


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    """Imports are made and followed on their own pages; here only listed."""

    list_display = ["original_name", "database", "status", "rows_done", "created", "updated", "skipped", "failed",
                    "created_at", "page"]
    list_filter = ["status", "database"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ContactImport | None = None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def page(self, obj: ContactImport) -> str:
        return format_html('<a href="{}">{}</a>', reverse("contact-import-page", args=[obj.pk]), _("Open"))
