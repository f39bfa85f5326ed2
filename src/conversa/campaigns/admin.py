"""Back office for campaigns: members, disposition options, quick replies; dispositions read-only."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign, Disposition, DispositionOption, QuickReply, TimeGroup, TimeRange
from conversa.campaigns.selectors import opening_preview
from conversa.contacts.forms import FieldSpecsField
from conversa.core import media as stored_media
from conversa.core.admin import ReadOnly

FORM_FIELD_TYPES = ("text", "number", "date", "choice", "boolean")
MAX_SUB_OPTIONS = 50


class SubOptionsField(forms.CharField):
    """Sub-dispositions as lines of a text box (one per line), stored as the JSON list of names."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 30})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(map(str, value)) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = value if isinstance(value, str) else "\n".join(map(str, value or []))
        names = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        if len(names) > MAX_SUB_OPTIONS:
            raise forms.ValidationError(_("At most %(max)s sub-dispositions.") % {"max": MAX_SUB_OPTIONS})
        too_long = [n for n in names if len(n) > 120]
        if too_long:
            raise forms.ValidationError(_("A sub-disposition is at most 120 characters: %(name)s")
                                        % {"name": too_long[0][:40] + "…"})
        return names

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial or []) != self.to_python(data or "")


class DispositionOptionForm(forms.ModelForm):
    """The management form's fields as a table of rows and the sub-dispositions one per line, both
    stored as the same JSON the closing action reads (not raw JSON boxes)."""

    form_fields = FieldSpecsField(label=_("form fields"), types=FORM_FIELD_TYPES, reserved=frozenset(),
                                  help_text=_("Management options only: the fields the agent fills when "
                                              "closing. Leave a row's name empty to skip it."))
    sub_options = SubOptionsField(label=_("sub-dispositions"),
                                  help_text=_("Optional: one per line, e.g. Price, then Timing."))

    class Meta:
        model = DispositionOption
        fields = ["campaign", "name", "kind", "positive", "form_fields", "sub_options", "order", "active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("form_fields") and data.get("kind") != DispositionOption.Kind.MANAGEMENT:
            self.add_error("form_fields", _("Only management options open a form: choose that kind, or "
                                            "remove the rows."))
        return data


class DispositionOptionInline(admin.StackedInline):
    model = DispositionOption
    form = DispositionOptionForm
    fields = [("name", "kind", "positive", "order", "active"), "form_fields", "sub_options"]
    extra = 0


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


class QuickReplyForm(forms.ModelForm):
    class Meta:
        model = QuickReply
        fields = ["title", "body", "attachment", "campaigns", "active"]

    def clean_attachment(self) -> Any:
        """A file WhatsApp takes (by its content, not its name), within the kind's size limit."""
        upload = self.cleaned_data.get("attachment")
        if not upload or not hasattr(upload, "content_type"):
            return upload  # none, or the one already stored
        # The same checks a send makes (inbox.actions.replies.check_upload), here as form errors.
        sniffed = stored_media.sniff_upload(upload, declared_mime=upload.content_type or "")
        accepted = stored_media.whatsapp_kind(sniffed.mime)
        if accepted is None:
            raise forms.ValidationError(_("WhatsApp does not accept this type of file."))
        if upload.size > accepted[1]:
            raise forms.ValidationError(_("This file is larger than WhatsApp allows for its type (%(mb)d MB).")
                                        % {"mb": accepted[1] // (1024 * 1024)})
        return upload


@admin.register(QuickReply)
class QuickReplyAdmin(admin.ModelAdmin):
    form = QuickReplyForm
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


class ShownRangeForm(forms.ModelForm):
    """A new range is saved as shown. Django skips an extra inline form nobody edited, so a new
    group's prefilled "Mon-Fri 09:00-18:00" row was shown but never stored (the line then answered
    out of hours all day); here an unsaved row counts as changed. To leave it out, remove the row."""

    class Meta:
        model = TimeRange
        fields = ["weekday_from", "weekday_to", "time_from", "time_to", "day_from", "day_to", "month_from",
                  "month_to"]

    def has_changed(self) -> bool:
        return self.instance.pk is None or super().has_changed()


class TimeRangeInline(admin.TabularInline):
    model = TimeRange
    form = ShownRangeForm

    def get_extra(self, request: HttpRequest, obj: TimeGroup | None = None, **kwargs: Any) -> int:
        """One prefilled row for a group without ranges; none once it has some ("Add another")."""
        return 0 if obj is not None and obj.ranges.exists() else 1


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class TimeGroupForm(forms.ModelForm):
    timezone = forms.ChoiceField(label=_("time zone"), choices=time_zone_choices)

    class Meta:
        model = TimeGroup
        fields = ["name", "timezone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["timezone"]
        current = self.instance.timezone if self.instance.pk else self.initial.get("timezone", settings.TIME_ZONE)
        if current and current not in dict(time_zone_choices()):  # a name this system's tz database lacks
            field.choices = [(current, current), *time_zone_choices()]  # type: ignore[attr-defined]
        self.initial.setdefault("timezone", current)


@admin.register(TimeGroup)
class TimeGroupAdmin(admin.ModelAdmin):
    """Business hours: lines outside every range answer with their out-of-hours message."""

    form = TimeGroupForm
    list_display = ["name", "timezone", "opening"]
    readonly_fields = ["opening"]
    fields = ["name", "timezone", "opening"]
    inlines = [TimeRangeInline]

    @admin.display(description=_("open now?"))
    def opening(self, obj: TimeGroup) -> str:
        if obj.pk is None:
            return str(_("Save to see when this group is open."))
        preview = opening_preview(group=obj)
        if preview.open_now:
            return str(_("Open now."))
        if preview.opens_at is None:
            return str(_("Closed: no range ever opens it (lines answer out of hours)."))
        return str(_("Closed now; opens %(when)s (%(zone)s).")) % {
            "when": formats.date_format(preview.opens_at, "D j M Y, H:i"), "zone": obj.timezone}
