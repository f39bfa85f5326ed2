"""Stored per-conversation first response and daily message rollups: the general report's figures
stay what counting every message gave, while it reads rollups for settled days."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient
from tests.reports.conftest import ok

from conversa.campaigns.models import Campaign, DispositionOption
from conversa.core import worker
from conversa.inbox.models import Conversation, Message
from conversa.reports import rollups
from conversa.reports.models import HourlyMessageCount, MessageCount, RolledUpDay, RolledUpHour
from conversa.whatsapp.models import Line, MessageTemplate


def _sales(client: APIClient, **params: str) -> dict[str, Any]:
    body = ok(client.get("/api/v1/reports/summary/", params))
    return {c["name"]: c for c in body["campaigns"]}["Sales"]


def test_first_response_is_stored_when_a_person_first_writes(api: Callable[[str], APIClient], demo: dict[str, Any],
                                                             customer_says: Callable[..., Conversation]) -> None:
    conversation = customer_says("Hola", phone="+5491155550101")
    agent = api("agent1")
    ok(agent.post(f"/api/v1/conversations/{conversation.pk}/capture/"))
    conversation.refresh_from_db()
    assert conversation.first_response_at is None  # capturing is not answering
    ok(agent.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "Hi!"}, format="json"), 201)
    ok(agent.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "Still?"}, format="json"), 201)
    first = Message.objects.filter(conversation=conversation, sender__isnull=False).order_by("created_at").first()
    assert first is not None
    conversation.refresh_from_db()
    assert conversation.first_response_at == first.created_at
    sale = DispositionOption.objects.get(campaign__name="Sales", name="Sale")
    ok(agent.post(f"/api/v1/conversations/{conversation.pk}/close/", {"disposition": sale.pk}, format="json"))
    conversation.refresh_from_db()
    assert conversation.first_response_at == first.created_at  # the goodbye (no sender) changes nothing

    template = MessageTemplate.objects.get(line=demo["sales_line"], name="order_update")
    body = ok(agent.post("/api/v1/conversations/", {"line": demo["sales_line"].pk, "phone": "+5491155550102",
                                                    "template": template.pk, "params": ["Eva", "A-1"]},
                         format="json"), 201)
    outbound = Conversation.objects.get(pk=body["id"])
    opening = Message.objects.get(conversation=outbound)
    assert outbound.first_response_at == opening.created_at


def test_migration_backfills_first_response_from_the_messages(demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    agent = User.objects.get(username="agent1")
    t0 = timezone.now() - timedelta(days=3)
    answered = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000001",
                                           status=Conversation.Status.CLOSED)
    unanswered = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000002",
                                             status=Conversation.Status.CLOSED)
    for conversation, sender, direction, seconds in [
        (answered, None, "in", 0), (answered, None, "out", 5), (answered, agent, "out", 90),
        (answered, agent, "out", 60), (unanswered, None, "in", 0), (unanswered, None, "out", 5),
    ]:
        message = Message.objects.create(conversation=conversation, line=line, direction=direction, sender=sender)
        Message.objects.filter(pk=message.pk).update(created_at=t0 + timedelta(seconds=seconds))
    migration = importlib.import_module("conversa.inbox.migrations.0008_first_response_report_sweep_indexes")
    migration.backfill_first_response(django_apps, None)
    answered.refresh_from_db()
    unanswered.refresh_from_db()
    assert answered.first_response_at == t0 + timedelta(seconds=60)  # the earliest agent message
    assert unanswered.first_response_at is None  # system messages are nobody's answer


def _move(conversation: Conversation, to: datetime) -> None:
    """The conversation and its messages happened at `to` (messages a minute apart)."""
    Conversation.objects.filter(pk=conversation.pk).update(created_at=to)
    for n, pk in enumerate(Message.objects.filter(conversation=conversation).order_by("id").values_list("pk",
                                                                                                       flat=True)):
        Message.objects.filter(pk=pk).update(created_at=to + timedelta(minutes=n))


def test_rolled_up_days_give_the_figures_counting_gave(api: Callable[[str], APIClient],
                                                      scenario: dict[str, Any]) -> None:
    today = timezone.localdate()
    noon = timezone.make_aware(datetime.combine(today, datetime.min.time())) + timedelta(hours=12)
    _move(scenario["c1"], noon - timedelta(days=3))
    _move(scenario["c2"], noon - timedelta(days=2, hours=11, minutes=50))  # 00:10, two days ago
    _move(scenario["c4"], noon - timedelta(days=5))
    client = api("supervisor")
    week = {"from": str(today - timedelta(days=6)), "to": str(today)}
    counted = ok(client.get("/api/v1/reports/summary/", week))
    assert not RolledUpDay.objects.exists()

    assert rollups.roll_up_settled_days() >= 3  # from c4's day to yesterday
    assert RolledUpDay.objects.filter(day=today - timedelta(days=1)).exists()
    assert not RolledUpDay.objects.filter(day=today).exists()  # today is counted live
    assert ok(client.get("/api/v1/reports/summary/", week)) == counted

    # What rolled-up days show comes from their rollup: messages removed now are still counted...
    sales_before = _sales(client, **week)
    Message.objects.filter(conversation=scenario["c1"]).delete()
    assert _sales(client, **week)["messages_received"] == sales_before["messages_received"]
    # ...until the days are counted again.
    call_command("rollup_reports", "--rebuild", verbosity=0)
    assert _sales(client, **week)["messages_received"] == sales_before["messages_received"] - 2
    # A range starting or ending inside a rolled-up day counts that part from the messages.
    c2_day = timezone.localdate(noon - timedelta(days=2, hours=11, minutes=50))
    start = timezone.make_aware(datetime.combine(c2_day, datetime.min.time())) + timedelta(minutes=5)
    part = _sales(client, **{"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()})
    in_window = Message.objects.filter(conversation__campaign__name="Sales", created_at__gte=start,
                                       created_at__lt=start + timedelta(hours=1))
    assert part["messages_received"] == in_window.filter(direction="in").count() == 1
    assert part["messages_sent"] == in_window.filter(direction="out").count() > 0


def test_only_settled_days_are_rolled_up(demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000003",
                                               status=Conversation.Status.CLOSED)
    today = timezone.localdate()
    midnight = timezone.make_aware(datetime.combine(today, datetime.min.time()))
    message = Message.objects.create(conversation=conversation, line=line, direction="in")
    Message.objects.filter(pk=message.pk).update(created_at=midnight - timedelta(days=2, hours=-3))
    # Half an hour after midnight yesterday is not settled yet: only the day before is rolled up.
    assert rollups.roll_up_settled_days(now=midnight + timedelta(minutes=30)) == 1
    assert list(RolledUpDay.objects.values_list("day", flat=True)) == [today - timedelta(days=2)]
    counts = MessageCount.objects.get()
    assert (counts.campaign_id, counts.direction, counts.sender_id, counts.count) == (
        Campaign.objects.get(name="Sales").pk, "in", None, 1)
    assert rollups.roll_up_settled_days(now=midnight + timedelta(minutes=90)) == 1  # now yesterday too
    assert rollups.roll_up_settled_days(now=midnight + timedelta(minutes=90)) == 0  # nothing left
    assert rollups.roll_up_day(today - timedelta(days=2))  # again: replaced, never doubled
    assert MessageCount.objects.count() == 1


def test_the_worker_sweep_keeps_rollups(demo: dict[str, Any]) -> None:
    assert worker._sweeps["report_rollups"] is rollups.sweep_rollups
    line = Line.objects.get(number="+15550100001")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000004",
                                               status=Conversation.Status.CLOSED)
    message = Message.objects.create(conversation=conversation, line=line, direction="in")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=4))
    assert worker.sweep()["report_rollups"] >= 3
    assert MessageCount.objects.get().count == 1


# --------------------------------------------------------------------------- hourly rollups
def _message(conversation: Conversation, *, at: datetime, direction: str = "in", sender: User | None = None) -> Message:
    message = Message.objects.create(conversation=conversation, line=conversation.line, direction=direction,
                                     sender=sender)
    Message.objects.filter(pk=message.pk).update(created_at=at)
    return message


def test_hours_outside_rolled_up_days_are_read_from_their_rollup(api: Callable[[str], APIClient],
                                                                 demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    agent = User.objects.get(username="agent1")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000005",
                                               status=Conversation.Status.CLOSED)
    t0 = rollups.hour_start(timezone.now()) - timedelta(hours=5)
    early = _message(conversation, at=t0 + timedelta(minutes=10))  # the range's partial first hour
    rolled = _message(conversation, at=t0 + timedelta(hours=1, minutes=5))
    _message(conversation, at=t0 + timedelta(hours=2, minutes=59), direction="out", sender=agent)
    late = _message(conversation, at=t0 + timedelta(hours=4, minutes=30))  # the range's partial last hour
    _message(conversation, at=t0 + timedelta(hours=4, minutes=50))  # after the range
    _message(conversation, at=t0 + timedelta(minutes=2))  # before it
    client = api("supervisor")
    window = {"from": (t0 + timedelta(minutes=5)).isoformat(), "to": (t0 + timedelta(hours=4, minutes=45)).isoformat()}
    counted = _sales(client, **window)
    assert (counted["messages_received"], counted["messages_sent"]) == (3, 1)
    agents = {a["name"]: a["messages_sent"] for a in counted["agents"]}
    assert agents == {"Laura Gómez": 1}

    for n in range(5):
        assert rollups.roll_up_hour(t0 + timedelta(hours=n))
    assert not RolledUpDay.objects.exists()
    assert _sales(client, **window) == counted
    # Where each figure is read from: a rolled-up hour lying inside the range from its rollup...
    Message.objects.filter(pk=rolled.pk).delete()
    assert _sales(client, **window)["messages_received"] == 3
    # ...the range's partial hours from the messages.
    Message.objects.filter(pk__in=[early.pk, late.pk]).delete()
    assert _sales(client, **window)["messages_received"] == 1
    assert rollups.roll_up_hour(t0 + timedelta(hours=1))  # again: replaced, never doubled
    assert _sales(client, **window)["messages_received"] == 0
    assert HourlyMessageCount.objects.filter(hour__hour=t0 + timedelta(hours=1)).count() == 0


def test_a_partial_first_day_and_today_give_the_figures_counting_gave(api: Callable[[str], APIClient],
                                                                      scenario: dict[str, Any]) -> None:
    today = timezone.localdate()
    first_day = rollups.day_start(today - timedelta(days=3))
    _move(scenario["c1"], first_day + timedelta(hours=10, minutes=17))  # in the range's partial first day
    _move(scenario["c4"], first_day + timedelta(hours=7))  # the same day, before the range starts
    _move(scenario["c2"], first_day + timedelta(days=1, hours=12))  # a whole day inside the range
    client = api("supervisor")
    days = {"from": (first_day + timedelta(hours=9)).isoformat(), "to": str(today)}  # today included
    counted = ok(client.get("/api/v1/reports/summary/", days))
    assert not RolledUpDay.objects.exists()

    now = timezone.now()
    assert rollups.roll_up_settled_days(now=now) >= 3
    # Then the hours after the last settled day, up to the last settled one (today's, mostly).
    after_days = rollups.hour_start(rollups.day_start(rollups.last_settled_day(now) + timedelta(days=1)))
    live_from = rollups.last_settled_hour(now) + rollups.HOUR
    assert rollups.roll_up_settled_hours(now=now) == (live_from - after_days) // rollups.HOUR
    assert ok(client.get("/api/v1/reports/summary/", days)) == counted

    # Every message before the last unsettled hours is read from a rollup now: removing them
    # changes nothing...
    assert Message.objects.filter(created_at__lt=live_from, conversation=scenario["c1"]).exists()
    Message.objects.filter(created_at__lt=live_from).delete()
    assert ok(client.get("/api/v1/reports/summary/", days)) == counted
    # ...and what arrives now is counted from the messages.
    sales = _sales(client, **days)
    _message(scenario["c3"], at=timezone.now())
    assert _sales(client, **days)["messages_received"] == sales["messages_received"] + 1


def test_only_settled_hours_after_the_last_settled_day_are_rolled_up(demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000006",
                                               status=Conversation.Status.CLOSED)
    midnight = rollups.day_start(timezone.localdate())
    _message(conversation, at=midnight - timedelta(hours=1, minutes=30))  # 22:30 yesterday
    # Half an hour after midnight, yesterday is not settled: its hours are, but for the last one.
    assert rollups.roll_up_settled_hours(now=midnight + timedelta(minutes=30)) == 23
    assert RolledUpHour.objects.order_by("hour").last().hour == midnight - timedelta(hours=2)
    counts = HourlyMessageCount.objects.get()
    assert (counts.hour.hour, counts.campaign_id, counts.direction, counts.sender_id, counts.count) == (
        midnight - timedelta(hours=2), line.campaign_id, "in", None, 1)
    assert rollups.roll_up_settled_hours(now=midnight + timedelta(minutes=30)) == 0  # nothing left
    # Once yesterday settles, its rollup counts its hours again (replaced, never doubled).
    assert rollups.roll_up_settled_days(now=midnight + timedelta(minutes=90)) == 1
    assert RolledUpHour.objects.filter(hour__gte=midnight - timedelta(days=1), hour__lt=midnight).count() == 24
    assert HourlyMessageCount.objects.get().count == 1
    assert rollups.roll_up_settled_hours(now=midnight + timedelta(minutes=90)) == 0  # 00:00 ends at 01:00
    assert rollups.roll_up_settled_hours(now=midnight + timedelta(minutes=121)) == 1


def test_the_upgrade_counts_the_hours_of_days_rolled_up_before_hours_were(demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    agent = User.objects.get(username="agent1")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000007",
                                               status=Conversation.Status.CLOSED)
    day = timezone.localdate() - timedelta(days=3)
    start = rollups.day_start(day)
    _message(conversation, at=start + timedelta(hours=3, minutes=10))
    _message(conversation, at=start + timedelta(hours=3, minutes=50), direction="out", sender=agent)
    _message(conversation, at=start + timedelta(hours=15))
    _message(conversation, at=start - timedelta(minutes=5))  # the day before: not this day's
    assert rollups.roll_up_day(day)
    expected = sorted(HourlyMessageCount.objects.values_list("hour__hour", "campaign_id", "direction", "sender_id",
                                                             "count"))
    assert sum(row[-1] for row in expected) == 3
    RolledUpHour.objects.all().delete()  # as a day rolled up before hourly rollups existed

    migration = importlib.import_module("conversa.reports.migrations.0003_hours_of_days_rolled_up_before")
    migration.count_hours_of_rolled_up_days(django_apps, None)
    assert sorted(HourlyMessageCount.objects.values_list("hour__hour", "campaign_id", "direction", "sender_id",
                                                         "count")) == expected
    assert RolledUpHour.objects.filter(hour__gte=start, hour__lt=start + timedelta(days=1)).count() == 24
    migration.count_hours_of_rolled_up_days(django_apps, None)  # again: nothing doubled
    assert HourlyMessageCount.objects.count() == len(expected)
