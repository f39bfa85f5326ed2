"""Business hours: time groups decide when a line is open; outside them the customer is told."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from conftest import results
from conversa.campaigns.models import TimeGroup, TimeRange
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import OutOfHours

UTC = datetime.UTC


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    """2026-11-23 is a Monday: at(0, 9) is Monday 09:00 UTC, at(6, 23) Sunday 23:00."""
    return datetime.datetime(2026, 11, 23 + day, hour, minute, tzinfo=UTC)


@pytest.fixture
def office() -> TimeGroup:
    group = TimeGroup.objects.create(name="Office", timezone="UTC")
    TimeRange.objects.create(time_group=group, weekday_from=0, weekday_to=4, time_from=datetime.time(9),
                             time_to=datetime.time(18))
    return group


def test_weekday_hours(office):
    assert office.is_open(at(0, 9)) and office.is_open(at(4, 17, 59))
    assert not office.is_open(at(0, 18)) and not office.is_open(at(0, 8, 59)) and not office.is_open(at(5, 12))


def test_overnight_and_wrapping_spans():
    group = TimeGroup.objects.create(name="Night", timezone="UTC")
    # Friday to Monday nights, 22:00-06:00: Monday 03:00 belongs to Sunday night.
    TimeRange.objects.create(time_group=group, weekday_from=4, weekday_to=0, time_from=datetime.time(22),
                             time_to=datetime.time(6))
    assert group.is_open(at(4, 23)) and group.is_open(at(5, 3)) and group.is_open(at(0, 3))
    assert group.is_open(at(0, 22)) and group.is_open(at(1, 5))  # Monday night runs into Tuesday
    assert not group.is_open(at(1, 23)) and not group.is_open(at(2, 3)) and not group.is_open(at(0, 12))


def test_month_and_day_spans_and_time_zone():
    group = TimeGroup.objects.create(name="Season", timezone="America/Argentina/Buenos_Aires")  # UTC-3
    TimeRange.objects.create(time_group=group, weekday_from=0, weekday_to=6, time_from=datetime.time(9),
                             time_to=datetime.time(18), day_from=20, day_to=30, month_from=11, month_to=2)
    assert group.is_open(at(0, 12))  # 09:00 in Buenos Aires on 23 November
    assert not group.is_open(at(0, 11, 59))  # 08:59 there
    assert not group.is_open(datetime.datetime(2026, 11, 10, 15, tzinfo=UTC))  # day 10: outside 20-30
    assert group.is_open(datetime.datetime(2027, 1, 25, 15, tzinfo=UTC))  # January: inside Nov-Feb
    assert not group.is_open(datetime.datetime(2027, 3, 25, 15, tzinfo=UTC))


def closed_now() -> TimeGroup:
    """A time group that is closed right now: open only (all day) on a weekday three days away."""
    group = TimeGroup.objects.create(name="Closed now", timezone="UTC")
    other_day = (timezone.now().weekday() + 3) % 7
    TimeRange.objects.create(time_group=group, weekday_from=other_day, weekday_to=other_day,
                             time_from=datetime.time(0), time_to=datetime.time(0))
    return group


def outbound_bodies(conversation: Conversation) -> list[str]:
    return list(conversation.messages.filter(direction="out").values_list("body", flat=True))


def test_out_of_hours_reply_keeps_the_conversation_for_the_morning(api, customer_says, demo, run_tasks):
    line = demo["sales_line"]
    line.time_group = closed_now()
    line.out_of_hours_message = "We are closed; we will answer from 9:00."
    line.welcome_message = "Welcome!"
    line.save()
    conversation = customer_says("Hola, ¿están?")
    customer_says("Necesito ayuda")
    run_tasks()
    assert outbound_bodies(conversation) == ["We are closed; we will answer from 9:00."]
    assert Message.objects.get(conversation=conversation, direction="out").status == Message.Status.SENT
    assert [c["id"] for c in results(api("agent1").get("/api/v1/inbox/general/"))] == [conversation.pk]


def test_out_of_hours_close_mode_closes_by_system_and_does_not_repeat(api, customer_says, demo):
    line = demo["sales_line"]
    line.time_group = closed_now()
    line.out_of_hours_message = "Closed."
    line.out_of_hours_action = OutOfHours.CLOSE
    line.save()
    first = customer_says("Hola")
    second = customer_says("¿Hola?")
    assert first.pk != second.pk
    for conversation in (first, second):
        conversation.refresh_from_db()
        assert conversation.status == "closed" and conversation.closed_by_system
    assert outbound_bodies(first) == ["Closed."] and outbound_bodies(second) == []
    assert results(api("agent1").get("/api/v1/inbox/general/")) == []


def test_within_hours_the_welcome_message_goes_out(customer_says, demo, office):
    open_now = TimeGroup.objects.create(name="Always", timezone="UTC")
    TimeRange.objects.create(time_group=open_now, weekday_from=0, weekday_to=6, time_from=datetime.time(0),
                             time_to=datetime.time(0))  # equal ends: the whole day
    line = demo["sales_line"]
    line.time_group = open_now
    line.welcome_message = "Welcome!"
    line.out_of_hours_message = "Closed."
    line.save()
    conversation = customer_says("Hola")
    assert outbound_bodies(conversation) == ["Welcome!"]
    assert conversation.status == "new"
