"""Daily message counts, so a report over weeks reads a few hundred rows instead of every message.

A day (server time zone) is rolled up once it is settled — it ended ROLLUP_SETTLE ago: messages are
stored with the time they were stored (`created_at` is never back-dated), and a conversation
changes campaign only while its customer is in the interactive menu, minutes at most. Days are
rolled up in order from the first message's day, each in its own transaction, by the worker's
sweep (registered in ReportsConfig.ready()) and by `manage.py rollup_reports`; the reports count
every day that has no rollup (today, a day not yet rolled up) from the messages themselves.

Hours are rolled up too, so the parts of a range that are not whole rolled-up days — today, the
day before until it settles, a range's partial first or last day — are read from hourly counts, and
only the last hour or two (and a bound's part of an hour) from the messages. Hours are UTC hours,
each rolled up once it ended ROLLUP_SETTLE ago: rolling up a day counts its hours in the same query,
and the sweep rolls up the hours after the last settled day one by one.

History loaded into days already rolled up (an import by SQL) is not seen until
`manage.py rollup_reports --rebuild` counts every day (and hour) again. The days rolled up before hours
were got theirs from the data migration reports/0003.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from conversa.inbox.models import Message
from conversa.reports.models import HourlyMessageCount, MessageCount, RolledUpDay, RolledUpHour

ROLLUP_SETTLE = timedelta(hours=1)
Period = TypeVar("Period", date, datetime)  # a day, or an hour's start
HOUR = timedelta(hours=1)
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


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _next_hour(moment: datetime) -> datetime:
    """The first hour start at or after `moment`."""
    start = hour_start(moment)
    return start if start == moment else start + HOUR


def last_settled_hour(now: datetime) -> datetime:
    """The start of the latest hour that ended at least ROLLUP_SETTLE before `now`."""
    return hour_start(now - ROLLUP_SETTLE) - HOUR


def roll_up_day(day: date, *, now: datetime | None = None) -> bool:
    """Count the day's messages per campaign, direction and sender (again, if it was rolled up),
    and per hour for each hour lying wholly inside the day, in one query. False when another
    process rolled it (or one of its hours) up at the same time (its counts stand)."""
    now = now or timezone.now()
    start, end = day_start(day), day_start(day + timedelta(1))
    hours = _hours(_next_hour(start), end)
    try:
        with transaction.atomic():
            RolledUpDay.objects.filter(day=day).delete()
            marker = RolledUpDay.objects.create(day=day, rolled_up_at=now)
            RolledUpHour.objects.filter(hour__in=hours).delete()
            hour_markers = {m.hour: m for m in RolledUpHour.objects.bulk_create(
                RolledUpHour(hour=h, rolled_up_at=now) for h in hours)}
            rows = (Message.objects.filter(created_at__gte=start, created_at__lt=end)
                    .values_list(TruncHour("created_at", tzinfo=UTC), "conversation__campaign_id", "direction",
                                 "sender_id")
                    .annotate(n=Count("id")).order_by())
            day_counts: Counts = defaultdict(int)
            hourly: list[HourlyMessageCount] = []
            for hour, campaign_id, direction, sender_id, n in rows:
                day_counts[(campaign_id, direction, sender_id)] += n
                if hour in hour_markers:
                    hourly.append(HourlyMessageCount(hour=hour_markers[hour], campaign_id=campaign_id,
                                                     direction=direction, sender_id=sender_id, count=n))
            MessageCount.objects.bulk_create(
                MessageCount(day=marker, campaign_id=campaign_id, direction=direction, sender_id=sender_id, count=n)
                for (campaign_id, direction, sender_id), n in day_counts.items())
            HourlyMessageCount.objects.bulk_create(hourly)
    except IntegrityError:
        return False
    return True


def _hours(start: datetime, end: datetime) -> list[datetime]:
    """The starts of the hours from `start` (an hour start) that end by `end`."""
    hours = []
    while start + HOUR <= end:
        hours.append(start)
        start += HOUR
    return hours


def roll_up_hour(hour: datetime, *, now: datetime | None = None) -> bool:
    """Count the messages of the hour starting at `hour` per campaign, direction and sender (again,
    if it was rolled up). False when another process rolled it up at the same time."""
    try:
        with transaction.atomic():
            RolledUpHour.objects.filter(hour=hour).delete()
            marker = RolledUpHour.objects.create(hour=hour, rolled_up_at=now or timezone.now())
            rows = (Message.objects.filter(created_at__gte=hour, created_at__lt=hour + HOUR)
                    .values_list("conversation__campaign_id", "direction", "sender_id").annotate(n=Count("id"))
                    .order_by())
            HourlyMessageCount.objects.bulk_create(
                HourlyMessageCount(hour=marker, campaign_id=campaign_id, direction=direction, sender_id=sender_id,
                                   count=n)
                for campaign_id, direction, sender_id, n in rows)
    except IntegrityError:
        return False
    return True


def roll_up_settled_hours(*, now: datetime | None = None, budget_seconds: float | None = None) -> int:
    """Roll up the settled hours after the last settled day (rolling up a day covers its hours),
    from the latest hour rolled up on; stops starting hours after `budget_seconds`. Returns how
    many hours were rolled up."""
    now = now or timezone.now()
    hour = hour_start(day_start(last_settled_day(now) + timedelta(days=1)))
    latest = RolledUpHour.objects.aggregate(latest=Max("hour"))["latest"]
    if latest is not None and latest + HOUR > hour:
        hour = latest + HOUR
    return _roll_up_each(first=hour, last=last_settled_hour(now), step=HOUR, roll_up=lambda h: roll_up_hour(h, now=now),
                         budget_seconds=budget_seconds)


def roll_up_settled_days(*, now: datetime | None = None, budget_seconds: float | None = None,
                         rebuild: bool = False) -> int:
    """Roll up every settled day not rolled up yet, oldest first (all of them with `rebuild`);
    stops starting days after `budget_seconds`. Returns how many days were rolled up."""
    now = now or timezone.now()
    if rebuild:
        RolledUpDay.objects.all().delete()
        RolledUpHour.objects.all().delete()
    latest = RolledUpDay.objects.aggregate(latest=Max("day"))["latest"]
    if latest is not None:
        day = latest + timedelta(days=1)
    else:
        first = Message.objects.order_by("created_at").values_list("created_at", flat=True).first()
        if first is None:
            return 0
        day = timezone.localdate(first)
    return _roll_up_each(first=day, last=last_settled_day(now), step=timedelta(days=1),
                         roll_up=lambda d: roll_up_day(d, now=now), budget_seconds=budget_seconds)


def _roll_up_each(*, first: Period, last: Period, step: timedelta, roll_up: Callable[[Period], bool],
                  budget_seconds: float | None) -> int:
    """roll_up(first), then each `step` on to `last`, starting none after `budget_seconds`; how many
    were rolled up (a period another process rolled up at the same time does not count)."""
    started = time.monotonic()
    rolled = 0
    period = first
    while period <= last:
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            break
        rolled += roll_up(period)
        period += step  # type: ignore[assignment]
    return rolled


def sweep_rollups() -> int:
    """The sweep job: catch up, a few seconds at most per run (days first: a day covers its hours).
    Returns how many days and hours were rolled up."""
    started = time.monotonic()
    days = roll_up_settled_days(budget_seconds=SWEEP_BUDGET_SECONDS)
    left = SWEEP_BUDGET_SECONDS - (time.monotonic() - started)
    return days + (roll_up_settled_hours(budget_seconds=left) if left > 0 else 0)


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
    their rollup, rolled-up hours of the rest (today, partial days) from theirs, every other
    moment (the last unsettled hour or two, a bound's part of an hour, anything not rolled up) from
    the messages. Five queries at most whatever the range."""
    first, last = _whole_days(start, end)
    rolled = sorted(RolledUpDay.objects.filter(day__gte=first, day__lte=last).values_list("day", "pk"))
    counts: Counts = {}
    if rolled:
        _add(counts, MessageCount.objects.filter(day_id__in=[pk for _day, pk in rolled],
                                                 campaign_id__in=campaign_ids))
    # The moments no day rollup covers: before, between and after the rolled-up days.
    gaps = _uncovered(start, end, [(day_start(day), day_start(day + timedelta(days=1))) for day, _pk in rolled])
    if not gaps:
        return counts
    inside = Q()
    for gap in gaps:
        inside |= Q(hour__gte=gap.start, hour__lte=gap.end - HOUR)  # hours lying wholly inside a gap
    hours = sorted(RolledUpHour.objects.filter(inside).values_list("hour", "pk"))
    if hours:
        _add(counts, HourlyMessageCount.objects.filter(hour_id__in=[pk for _hour, pk in hours],
                                                       campaign_id__in=campaign_ids))
    window = Q()
    for gap in gaps:
        for span in _uncovered(gap.start, gap.end, [(hour, hour + HOUR) for hour, _pk in hours
                                                    if gap.start <= hour < gap.end]):
            window |= Q(created_at__gte=span.start, created_at__lt=span.end)
    if window:
        live = (Message.objects.filter(window, conversation__campaign_id__in=campaign_ids)
                .values_list("conversation__campaign_id", "direction", "sender_id").annotate(n=Count("id"))
                .order_by())
        for campaign_id, direction, sender_id, n in live:
            key = (campaign_id, direction, sender_id)
            counts[key] = counts.get(key, 0) + n
    return counts


def _uncovered(start: datetime, end: datetime, covered: list[tuple[datetime, datetime]]) -> list[Span]:
    """The parts of [start, end) outside the covered spans (sorted, disjoint, inside it)."""
    spans: list[Span] = []
    cursor = start
    for span_start, span_end in covered:
        if span_start > cursor:
            spans.append(Span(cursor, span_start))
        cursor = span_end
    if cursor < end:
        spans.append(Span(cursor, end))
    return spans


def _add(counts: Counts, rows: Any) -> None:
    """Sum rollup rows per campaign, direction and sender into `counts`."""
    for campaign_id, direction, sender_id, n in (rows.values_list("campaign_id", "direction", "sender_id")
                                                 .annotate(n=Sum("count")).order_by()):
        key = (campaign_id, direction, sender_id)
        counts[key] = counts.get(key, 0) + n
