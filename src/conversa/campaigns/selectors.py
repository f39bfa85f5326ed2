"""Reads: which campaigns a user may work in (every API, page and websocket goes through this), and
when a time group opens."""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from conversa.accounts.selectors import AnyUser, has_whatsapp_skill, is_admin, is_supervisor
from conversa.campaigns.models import Campaign, TimeGroup


def campaigns_for(user: AnyUser) -> QuerySet[Campaign]:
    """Campaigns whose WhatsApp work the user may see."""
    if is_admin(user):
        return Campaign.objects.filter(active=True)
    if is_supervisor(user):
        return Campaign.objects.filter(Q(supervisors=user.pk) | Q(agents=user.pk), active=True).distinct()
    if not has_whatsapp_skill(user):
        return Campaign.objects.none()
    return Campaign.objects.filter(agents=user.pk, active=True, whatsapp_enabled=True)


@dataclass(frozen=True)
class OpeningPreview:
    """What a time group means right now: open or not, and when it next opens (None: never —
    a group without ranges)."""

    open_now: bool
    opens_at: datetime.datetime | None


def opening_preview(*, group: TimeGroup, now: datetime.datetime | None = None) -> OpeningPreview:
    """The back office's "open now / opens at" for a time group. Openings happen at a range's
    start time or at midnight (whole-day ranges, a day-of-month or month span beginning), so those
    instants over the next year are the only candidates: the earliest at which it is open wins."""
    now = now or timezone.now()
    zone = zoneinfo.ZoneInfo(group.timezone)
    ranges = list(group.ranges.all())
    local = now.astimezone(zone)
    if any(r.matches(local) for r in ranges):
        return OpeningPreview(open_now=True, opens_at=None)
    starts = sorted({datetime.time(0), *(r.time_from for r in ranges)}) if ranges else []
    for offset in range(367):
        day = local.date() + datetime.timedelta(days=offset)
        for start in starts:
            candidate = datetime.datetime.combine(day, start, tzinfo=zone)
            if candidate > local and any(r.matches(candidate) for r in ranges):
                return OpeningPreview(open_now=False, opens_at=candidate)
    return OpeningPreview(open_now=False, opens_at=None)
