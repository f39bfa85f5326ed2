from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversa.contacts.models import Contact, ContactDatabase


class Campaign(models.Model):
    class Routing(models.TextChoices):
        MANUAL = "manual", _("Manual capture from the general inbox")
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_BUSY = "least_busy", _("Least busy")

    name = models.CharField(_("name"), max_length=120, unique=True)
    contact_database = models.ForeignKey(ContactDatabase, on_delete=models.PROTECT, related_name="campaigns")
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="campaigns", blank=True, verbose_name=_("agents")
    )
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="supervised_campaigns", blank=True, verbose_name=_("supervisors")
    )
    whatsapp_enabled = models.BooleanField(_("WhatsApp enabled"), default=True)
    routing = models.CharField(_("routing"), max_length=20, choices=Routing.choices, default=Routing.MANUAL)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DispositionOption(models.Model):
    """A way a conversation can end ("calificación"). Management options open a form."""

    class Kind(models.TextChoices):
        PLAIN = "plain", _("Plain")
        MANAGEMENT = "management", _("Management (opens a form)")
        SCHEDULE = "schedule", _("Schedule a follow-up")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="disposition_options")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PLAIN)
    positive = models.BooleanField(_("positive outcome"), default=False)
    # Management form: [{"name": "amount", "label": "Amount", "type": "number", "required": true}]
    form_fields = models.JSONField(_("form fields"), default=list, blank=True)
    sub_options = models.JSONField(_("sub-dispositions"), default=list, blank=True)
    order = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("disposition option")
        verbose_name_plural = _("disposition options")
        ordering = ["campaign", "order", "name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="disposition_option_unique_name")]

    def __str__(self) -> str:
        return self.name


class QuickReply(models.Model):
    """Our own canned answer, free to send inside the 24 h window.

    The body may use placeholders: {contact.first_name}, {contact.last_name}, {contact.full_name},
    {contact.email}, {contact.phone}, {agent.first_name}, {agent.full_name}, {campaign.name}.
    """

    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("body"))
    # Sent with the body as its caption (a price list, a map, a form). Kept in the media storage,
    # never served by URL: only sent to customers.
    attachment = models.FileField(_("file"), upload_to="quick-replies/", blank=True, help_text=_(
        "Optional: an image, video, audio or document within WhatsApp's limits, sent with the text as its caption."))
    campaigns = models.ManyToManyField(Campaign, related_name="quick_replies", blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Disposition(models.Model):
    """One entry of a contact's history (journey): how an interaction ended."""

    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, null=True, blank=True, related_name="dispositions"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="dispositions")
    option = models.ForeignKey(DispositionOption, on_delete=models.PROTECT, related_name="dispositions")
    sub_option = models.CharField(max_length=120, blank=True)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dispositions")
    notes = models.TextField(blank=True)
    form_answers = models.JSONField(default=dict, blank=True)
    follow_up_at = models.DateTimeField(null=True, blank=True)
    conversation = models.OneToOneField(
        "inbox.Conversation", on_delete=models.PROTECT, null=True, blank=True, related_name="disposition"
    )
    channel = models.CharField(max_length=20, default="whatsapp")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("disposition")
        verbose_name_plural = _("dispositions")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.option} ({self.created_at:%Y-%m-%d})"


def _within(value: int, start: int, end: int) -> bool:
    """start..end inclusive; a span whose end comes before its start wraps (Fri..Mon, Nov..Feb)."""
    return start <= value <= end if start <= end else value >= start or value <= end


class TimeGroup(models.Model):
    """Business hours ("grupo horario"): a line is open when any of its ranges matches."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    timezone = models.CharField(_("time zone"), max_length=64, default=settings.TIME_ZONE,
                                help_text=_("IANA name, e.g. America/Argentina/Buenos_Aires"))

    class Meta:
        verbose_name = _("time group")
        verbose_name_plural = _("time groups")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"timezone": _("Unknown time zone.")}) from exc

    def is_open(self, at: datetime.datetime) -> bool:
        local = at.astimezone(zoneinfo.ZoneInfo(self.timezone))
        return any(r.matches(local) for r in self.ranges.all())


class TimeRange(models.Model):
    """Weekdays x hours, optionally limited to days of the month and months. Overnight hours
    (22:00-06:00) and wrapping spans (Fri-Mon) are allowed; the end time is exclusive, and equal
    start and end times (00:00-00:00) mean the whole day."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    time_group = models.ForeignKey(TimeGroup, on_delete=models.CASCADE, related_name="ranges")
    weekday_from = models.PositiveSmallIntegerField(_("from weekday"), choices=Weekday.choices, default=0)
    weekday_to = models.PositiveSmallIntegerField(_("to weekday"), choices=Weekday.choices, default=4)
    time_from = models.TimeField(_("from time"), default=datetime.time(9, 0))
    time_to = models.TimeField(_("to time"), default=datetime.time(18, 0))
    day_from = models.PositiveSmallIntegerField(_("from day of month"), null=True, blank=True)
    day_to = models.PositiveSmallIntegerField(_("to day of month"), null=True, blank=True)
    month_from = models.PositiveSmallIntegerField(_("from month"), null=True, blank=True)
    month_to = models.PositiveSmallIntegerField(_("to month"), null=True, blank=True)

    class Meta:
        verbose_name = _("time range")
        verbose_name_plural = _("time ranges")

    def __str__(self) -> str:
        days = f"{self.get_weekday_from_display()}-{self.get_weekday_to_display()}"
        return f"{days} {self.time_from:%H:%M}-{self.time_to:%H:%M}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for low, high, lo, hi in (("day_from", "day_to", 1, 31), ("month_from", "month_to", 1, 12)):
            a, b = getattr(self, low), getattr(self, high)
            if (a is None) != (b is None):
                errors[high] = str(_("Give both ends of the span, or neither."))
            for name, value in ((low, a), (high, b)):
                if value is not None and not lo <= value <= hi:
                    errors[name] = str(_("Must be between %(low)d and %(high)d.")) % {"low": lo, "high": hi}
        if errors:
            raise ValidationError(errors)

    def matches(self, local: datetime.datetime) -> bool:
        if (self.month_from is not None and self.month_to is not None
                and not _within(local.month, self.month_from, self.month_to)):
            return False
        if (self.day_from is not None and self.day_to is not None
                and not _within(local.day, self.day_from, self.day_to)):
            return False
        now = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.time_from == self.time_to:  # 00:00-00:00: the whole day
            return _within(weekday, self.weekday_from, self.weekday_to)
        if self.time_from < self.time_to:
            return _within(weekday, self.weekday_from, self.weekday_to) and self.time_from <= now < self.time_to
        # Overnight: the part after midnight belongs to the previous day's span.
        if now >= self.time_from:
            return _within(weekday, self.weekday_from, self.weekday_to)
        if now < self.time_to:
            return _within((weekday - 1) % 7, self.weekday_from, self.weekday_to)
        return False
