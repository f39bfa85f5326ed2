"""Rollups the reports read instead of every message (reports.rollups keeps them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign


class RolledUpDay(models.Model):
    """A day (server time zone) whose messages are counted in MessageCount. Only settled days are
    rolled up (their messages no longer change); the reports count any other day live."""

    day = models.DateField(_("day"), unique=True)
    rolled_up_at = models.DateTimeField(_("rolled up at"))

    class Meta:
        verbose_name = _("rolled-up day")
        verbose_name_plural = _("rolled-up days")

    def __str__(self) -> str:
        return self.day.isoformat()


class _CountOfMessages(models.Model):
    """The columns a rollup counts messages by: campaign, direction and sender (None: the customer
    or the system)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=3)
    # As Message.sender: a deleted user's messages still count for the campaign, for no agent.
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    count = models.PositiveIntegerField()

    class Meta:
        abstract = True


class MessageCount(_CountOfMessages):
    """Messages of one day, campaign, direction and sender."""

    day = models.ForeignKey(RolledUpDay, on_delete=models.CASCADE, related_name="counts")

    class Meta:
        verbose_name = _("message count")
        verbose_name_plural = _("message counts")
        indexes = [models.Index(fields=["campaign", "day"], name="report_msgcount_idx")]

    def __str__(self) -> str:
        return f"{self.day_id} {self.campaign_id} {self.direction} {self.sender_id}: {self.count}"


class RolledUpHour(models.Model):
    """An hour (UTC hours: whole in every time zone but a few with half-hour offsets) whose messages
    are counted in HourlyMessageCount: the reports read them for the parts of a range that are not
    whole rolled-up days (today, a partial first or last day) instead of the messages."""

    hour = models.DateTimeField(_("hour"), unique=True)  # its start
    rolled_up_at = models.DateTimeField(_("rolled up at"))

    class Meta:
        verbose_name = _("rolled-up hour")
        verbose_name_plural = _("rolled-up hours")

    def __str__(self) -> str:
        return self.hour.isoformat()


class HourlyMessageCount(_CountOfMessages):
    """Messages of one hour, campaign, direction and sender."""

    hour = models.ForeignKey(RolledUpHour, on_delete=models.CASCADE, related_name="counts")

    class Meta:
        verbose_name = _("hourly message count")
        verbose_name_plural = _("hourly message counts")

    def __str__(self) -> str:
        return f"{self.hour_id} {self.campaign_id} {self.direction} {self.sender_id}: {self.count}"
