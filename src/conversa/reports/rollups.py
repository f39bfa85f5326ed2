"""Daily message counts, so a report over weeks reads a few hundred rows instead of every message.

A day (server time zone) is rolled up once it is settled — it ended ROLLUP_SETTLE ago: messages are
stored with the time they were stored (`created_at` is never back-dated), and a conversation
changes campaign only while its customer is in the interactive menu, minutes at most. Days are
rolled up in order from the first message's day, each in its own transaction, by the worker's
sweep (registered in ReportsConfig.ready()) and by `manage.py rollup_reports`; the reports count
every day that has no rollup (today, a day not yet rolled up) from the messages themselves.

History loaded into days already rolled up (an import by SQL) is not seen until
`manage.py rollup_reports --rebuild` counts every day again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from conversa.inbox.models import Message
from conversa.reports.models import MessageCount, RolledUpDay

ROLLUP_SETTLE = timedelta(hours=1)
# A sweep stops starting new days after this long (the first run after an upgrade or an import
# rolls up a long history over several sweeps; `rollup_reports` has no budget).
SWEEP_BUDGET_SECONDS = 5.0

# (campaign id, direction, sender id) → messages
Counts = dict[tuple[int, str, int | None], int]


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def last_settled_day(now: datetime) -> date:
    """The latest day that ended at least ROLLUP_SETTLE before `now`."""
    return timezone.localdate(now - ROLLUP_SETTLE) - timedelta(days=1)


def roll_up_day(day: date, *, now: datetime | None = None) -> bool:
    """Count the day's messages per campaign, direction and sender (again, if it was rolled up).
    False when another process rolled it up at the same time (its counts stand)."""
    try:
        with transaction.atomic():
            RolledUpDay.objects.filter(day=day).delete()
            marker = RolledUpDay.objects.create(day=day, rolled_up_at=now or timezone.now())
            rows = (Message.objects.filter(created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(1)))
                    .values_list("conversation__campaign_id", "direction", "sender_id").annotate(n=Count("id"))
                    .order_by())
            MessageCount.objects.bulk_create(
                MessageCount(day=marker, campaign_id=campaign_id, direction=direction, sender_id=sender_id, count=n)
                for campaign_id, direction, sender_id, n in rows)
    except IntegrityError:
        return False
    return True


def roll_up_settled_days(*, now: datetime | None = None, budget_seconds: float | None = None,
                         rebuild: bool = False) -> int:
    """Roll up every settled day not rolled up yet, oldest first (all of them with `rebuild`);
    stops starting days after `budget_seconds`. Returns how many days were rolled up."""
    now = now or timezone.now()
    if rebuild:
        RolledUpDay.objects.all().delete()
    latest = RolledUpDay.objects.aggregate(latest=Max("day"))["latest"]
    if latest is not None:
        day = latest + timedelta(days=1)
    else:
        first = Message.objects.order_by("created_at").values_list("created_at", flat=True).first()
        if first is None:
            return 0
        day = timezone.localdate(first)
    last = last_settled_day(now)
    started = time.monotonic()
    rolled = 0
    while day <= last:
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            break
        rolled += roll_up_day(day, now=now)
        day += timedelta(days=1)
    return rolled


def sweep_rollups() -> int:
    """The sweep job: catch up, a few seconds at most per run."""
    return roll_up_settled_days(budget_seconds=SWEEP_BUDGET_SECONDS)


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime


def _whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The first and last day lying wholly inside [start, end) (first > last when none does)."""
    first = timezone.localdate(start)
    if day_start(first) < start:
        first += timedelta(days=1)
    return first, timezone.localdate(end) - timedelta(days=1)


def message_counts(*, campaign_ids: list[int], start: datetime, end: datetime) -> Counts:
    """Messages created in [start, end) per campaign, direction and sender: rolled-up days from
    their rollup, every other moment (partial days, today, days not rolled up) from the messages.
    Three queries whatever the range."""
    first, last = _whole_days(start, end)
    rolled = sorted(RolledUpDay.objects.filter(day__gte=first, day__lte=last).values_list("day", "pk"))
    counts: Counts = {}
    if rolled:
        summed = (MessageCount.objects.filter(day_id__in=[pk for _day, pk in rolled], campaign_id__in=campaign_ids)
                  .values_list("campaign_id", "direction", "sender_id").annotate(n=Sum("count")).order_by())
        for campaign_id, direction, sender_id, n in summed:
            counts[(campaign_id, direction, sender_id)] = n
    # The moments no rollup covers: before, between and after the rolled-up days.
    gaps: list[Span] = []
    cursor = start
    for day, _pk in rolled:
        if day_start(day) > cursor:
            gaps.append(Span(cursor, day_start(day)))
        cursor = day_start(day + timedelta(days=1))
    if cursor < end:
        gaps.append(Span(cursor, end))
    if gaps:
        window = Q()
        for gap in gaps:
            window |= Q(created_at__gte=gap.start, created_at__lt=gap.end)
        live = (Message.objects.filter(window, conversation__campaign_id__in=campaign_ids)
                .values_list("conversation__campaign_id", "direction", "sender_id").annotate(n=Count("id"))
                .order_by())
        for campaign_id, direction, sender_id, n in live:
            key = (campaign_id, direction, sender_id)
            counts[key] = counts.get(key, 0) + n
    return counts
