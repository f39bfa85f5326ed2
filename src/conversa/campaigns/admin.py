"""Back office for campaigns: members, disposition options, quick replies; dispositions read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign, Disposition, DispositionOption, QuickReply, TimeGroup, TimeRange
from conversa.contacts.admin import validate_field_specs
from conversa.core.admin import ReadOnly

FORM_FIELD_TYPES = {"text", "number", "date", "choice", "boolean"}


class DispositionOptionForm(forms.ModelForm):
    class Meta:
        model = DispositionOption
        fields = ["campaign", "name", "kind", "positive", "form_fields", "sub_options", "order", "active"]
        help_texts = {
            "form_fields": _('Management options only: the form the agent fills when closing, e.g. '
                             '[{"name": "amount", "label": "Amount", "type": "number", "required": true}]. '
                             'Types: text, number, date, choice, boolean.'),
            "sub_options": _('Optional sub-dispositions, e.g. ["Price", "Timing"].'),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["form_fields"] = validate_field_specs(data.get("form_fields") or [], FORM_FIELD_TYPES)
        except forms.ValidationError as exc:
            self.add_error("form_fields", exc)
        subs = data.get("sub_options") or []
        if not isinstance(subs, list) or not all(isinstance(s, str) and s for s in subs):
            self.add_error("sub_options", _("Enter a list of names."))
        return data


class DispositionOptionInline(admin.TabularInline):
    model = DispositionOption
    form = DispositionOptionForm
    fields = ["name", "kind", "positive", "form_fields", "sub_options", "order", "active"]
    extra = 1


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "contact_database", "whatsapp_enabled", "routing", "active", "agent_count"]
    list_filter = ["whatsapp_enabled", "routing", "active"]
    search_fields = ["name"]
    filter_horizontal = ["agents", "supervisors"]
    inlines = [DispositionOptionInline]

    @admin.display(description=_("agents"))
    def agent_count(self, obj: Campaign) -> int:
        return obj.agents.count()


@admin.register(DispositionOption)
class DispositionOptionAdmin(admin.ModelAdmin):
    form = DispositionOptionForm
    list_display = ["name", "campaign", "kind", "positive", "order", "active"]
    list_filter = ["campaign", "kind", "active"]
    search_fields = ["name"]


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "active", "campaign_list"]
    list_filter = ["active", "campaigns"]
    search_fields = ["title", "body"]
    filter_horizontal = ["campaigns"]

    @admin.display(description=_("campaigns"))
    def campaign_list(self, obj: QuickReply) -> str:
        return ", ".join(c.name for c in obj.campaigns.all())


@admin.register(Disposition)
class DispositionAdmin(ReadOnly, admin.ModelAdmin):
    """The contacts' history: written by agents closing conversations, never edited here."""

    list_display = ["created_at", "campaign", "option", "contact", "agent", "channel"]
    list_filter = ["campaign", "option", "channel"]
    search_fields = ["contact__phone", "contact__first_name", "contact__last_name", "notes"]
    date_hierarchy = "created_at"


class TimeRangeInline(admin.TabularInline):
    model = TimeRange
    extra = 1


@admin.register(TimeGroup)
class TimeGroupAdmin(admin.ModelAdmin):
    """Business hours: lines outside every range answer with their out-of-hours message."""

    list_display = ["name", "timezone"]
    inlines = [TimeRangeInline]
