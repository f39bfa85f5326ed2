"""Count the hours of the days rolled up before hourly rollups existed, so a range's partial first day
among them is read from hourly counts, not from the messages, right after an upgrade (rolling up a
day now counts its hours in the same query; this does the same for the days already rolled up)."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

HOUR = timedelta(hours=1)


def _hours_inside(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hour starts whose hour lies wholly inside [start, end)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += HOUR
    hours = []
    while hour + HOUR <= end:
        hours.append(hour)
        hour += HOUR
    return hours


def count_hours_of_rolled_up_days(apps: Any, schema_editor: Any) -> None:
    RolledUpDay = apps.get_model("reports", "RolledUpDay")
    RolledUpHour = apps.get_model("reports", "RolledUpHour")
    HourlyMessageCount = apps.get_model("reports", "HourlyMessageCount")
    Message = apps.get_model("inbox", "Message")
    known = set(RolledUpHour.objects.values_list("hour", flat=True))
    for rolled_up in RolledUpDay.objects.order_by("day"):
        start = timezone.make_aware(datetime.combine(rolled_up.day, datetime.min.time()))
        end = timezone.make_aware(datetime.combine(rolled_up.day + timedelta(days=1), datetime.min.time()))
        hours = [hour for hour in _hours_inside(start, end) if hour not in known]
        if not hours:
            continue
        markers = {marker.hour: marker for marker in RolledUpHour.objects.bulk_create(
            RolledUpHour(hour=hour, rolled_up_at=rolled_up.rolled_up_at) for hour in hours)}
        rows = (Message.objects.filter(created_at__gte=hours[0], created_at__lt=hours[-1] + HOUR)
                .values_list(TruncHour("created_at", tzinfo=UTC), "conversation__campaign_id", "direction",
                             "sender_id")
                .annotate(n=Count("id")).order_by())
        counts: dict[tuple[Any, ...], int] = defaultdict(int)
        for hour, campaign_id, direction, sender_id, n in rows:
            counts[(hour, campaign_id, direction, sender_id)] += n
        HourlyMessageCount.objects.bulk_create(
            HourlyMessageCount(hour=markers[hour], campaign_id=campaign_id, direction=direction,
                               sender_id=sender_id, count=n)
            for (hour, campaign_id, direction, sender_id), n in counts.items() if hour in markers)
        known.update(hours)


class Migration(migrations.Migration):

    dependencies = [
        ("inbox", "0011_conversation_notes"),
        ("reports", "0002_hourly_message_counts"),
    ]

    operations = [
        migrations.RunPython(count_hours_of_rolled_up_days, migrations.RunPython.noop),
    ]
