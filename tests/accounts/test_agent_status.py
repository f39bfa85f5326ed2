"""Agent status and pauses (issue 11, bug 3 and the status feature): Ready / Paused with the admin's
reasons / Offline through the API, each stretch recorded; offline after the last console socket has
been closed for the grace period, and on logout; opening the console makes an agent ready unless she
chose Offline herself."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.utils import timezone

from conversa.accounts import services
from conversa.accounts.models import AgentProfile, PauseReason, StatusPeriod
from conversa.core.errors import InvalidInput
from conversa.core.worker import sweep
from conversa.realtime import presence
from conversa.realtime.models import StreamEvent

User = get_user_model()


def profile(username: str) -> AgentProfile:
    return AgentProfile.objects.get(user__username=username)


def test_the_demo_leaves_agents_offline_until_they_open_the_console(demo):
    from conversa.web.demo import load_demo

    AgentProfile.objects.update(status=AgentProfile.Status.OFFLINE)
    load_demo()  # loading again changes nobody's status
    agent3 = User.objects.get(username="agent3")
    assert profile("agent3").status == "offline"
    handle = presence.socket_opened(user_id=agent3.pk)
    assert profile("agent3").status == "ready"
    assert StatusPeriod.objects.get(user=agent3, ended_at__isnull=True).source == "connection"
    presence.socket_closed(user_id=agent3.pk, handle=handle)


def test_pause_with_a_reason_through_the_api_is_recorded_and_announced(api):
    lunch = PauseReason.objects.get(name="Lunch")
    training = PauseReason.objects.get(name="Training")
    assert {r["name"]: r["productive"] for r in api("agent1").get("/api/v1/pause-reasons/").json()} == {
        "Break": False, "Lunch": False, "Training": True, "Back office": True}
    before = StreamEvent.objects.count()
    response = api("agent1").post("/api/v1/me/status/", {"status": "paused", "pause_reason": lunch.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paused" and response.json()["pause_reason_name"] == "Lunch"
    event = StreamEvent.objects.filter(type="agent.status").order_by("-id").first()
    assert StreamEvent.objects.count() > before and event is not None
    assert event.payload["pause_reason"] == "Lunch" and event.payload["productive"] is False

    api("agent1").post("/api/v1/me/status/", {"status": "paused", "pause_reason": training.pk}, format="json")
    api("agent1").post("/api/v1/me/status/", {"status": "ready"}, format="json")
    periods = list(StatusPeriod.objects.filter(user__username="agent1").order_by("started_at", "id"))
    assert [(p.status, p.pause_name, p.productive) for p in periods] == [
        ("paused", "Lunch", False), ("paused", "Training", True), ("ready", "", False)]
    assert all(p.ended_at is not None for p in periods[:-1]) and periods[-1].ended_at is None


def test_an_unknown_or_inactive_pause_reason_is_a_400_naming_the_field(api):
    inactive = PauseReason.objects.create(name="Old", active=False)
    for value in (inactive.pk, 999999):
        response = api("agent1").post("/api/v1/me/status/", {"status": "paused", "pause_reason": value}, format="json")
        assert response.status_code == 400 and response.json()["field"] == "pause_reason"
    assert profile("agent1").status == "ready"


def test_offline_after_the_last_socket_closed_for_the_grace_period(demo):
    agent2 = User.objects.get(username="agent2")
    AgentProfile.objects.filter(user=agent2).update(status="offline")
    first = presence.socket_opened(user_id=agent2.pk)
    second = presence.socket_opened(user_id=agent2.pk)
    assert profile("agent2").status == "ready"
    presence.socket_closed(user_id=agent2.pk, handle=first)
    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    AgentProfile.objects.filter(user=agent2).update(last_seen_at=long_ago, status_changed_at=long_ago)
    sweep()
    assert profile("agent2").status == "ready"  # one console still open
    presence.socket_closed(user_id=agent2.pk, handle=second)
    sweep()
    assert profile("agent2").status == "ready"  # within the grace period
    AgentProfile.objects.filter(user=agent2).update(last_seen_at=long_ago)
    with override_settings(CONVERSA_PRESENCE_GRACE=60):
        sweep()
    assert profile("agent2").status == "offline"
    assert StatusPeriod.objects.get(user=agent2, ended_at__isnull=True).source == "connection"
    # Back: opening the console makes her ready again (she did not choose Offline).
    presence.socket_opened(user_id=agent2.pk)
    assert profile("agent2").status == "ready"


def test_offline_by_choice_stays_offline_when_the_console_opens(api):
    agent1 = User.objects.get(username="agent1")
    assert api("agent1").post("/api/v1/me/status/", {"status": "offline"}, format="json").status_code == 200
    presence.socket_opened(user_id=agent1.pk)
    assert profile("agent1").status == "offline"


def test_logout_makes_her_offline_at_once(demo):
    client = Client()
    assert client.post("/login/", {"username": "agent2", "password": "demo"}).status_code == 302
    assert profile("agent2").status == "ready"
    client.post("/logout/")
    assert profile("agent2").status == "offline"
    assert StatusPeriod.objects.get(user__username="agent2", ended_at__isnull=True).source == "logout"


def test_supervisors_and_agents_without_the_whatsapp_skill_are_not_made_ready_by_a_socket(demo):
    for username in ("supervisor", "agent4"):
        user = User.objects.get(username=username)
        AgentProfile.objects.filter(user=user).update(status="offline")
        presence.socket_opened(user_id=user.pk)
        assert profile(username).status == "offline"


def test_set_status_rejects_unknown_statuses(demo):
    agent1 = User.objects.get(username="agent1")
    with pytest.raises(InvalidInput) as refused:
        services.set_status(user=agent1, status="lunch")
    assert refused.value.field == "status"


def test_the_dashboard_and_reports_show_the_real_status_and_time_in_each(api):
    lunch = PauseReason.objects.get(name="Lunch")
    training = PauseReason.objects.get(name="Training")
    api("agent1").post("/api/v1/me/status/", {"status": "paused", "pause_reason": lunch.pk}, format="json")
    live = api("supervisor").get("/api/v1/reports/live/").json()
    sales = next(c for c in live["campaigns"] if c["name"] == "Sales")
    laura = next(a for a in sales["agents"] if a["name"] == "Laura Gómez")
    assert laura["status"] == "paused" and laura["pause_reason"] == "Lunch"

    # Two hours of work: 60 min ready, 30 min training (productive), 20 min lunch; the report's day.
    agent1 = User.objects.get(username="agent1")
    StatusPeriod.objects.filter(user=agent1).delete()
    start = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)
    for minutes_from, minutes_to, status, reason in [(0, 60, "ready", None), (60, 90, "paused", training),
                                                     (90, 110, "paused", lunch), (110, 120, "offline", None)]:
        StatusPeriod.objects.create(user=agent1, status=status, pause_reason=reason,
                                    pause_name=reason.name if reason else "",
                                    productive=bool(reason and reason.productive),
                                    started_at=start + datetime.timedelta(minutes=minutes_from),
                                    ended_at=start + datetime.timedelta(minutes=minutes_to))
    client = Client()
    assert client.post("/login/", {"username": "supervisor", "password": "demo"}).status_code == 302
    day = timezone.localtime(start).date().isoformat()
    html = client.get(f"/supervisor/reports/?from={day}&to={day}").content.decode()
    row = html[html.index(f'<tr data-agent="{agent1.pk}">'):]
    row = row[:row.index("</tr>")]
    assert "1 h 00 min" in row and "30 min 00 s" in row and "20 min 00 s" in row
    assert "Lunch: 20 min 00 s" in row and "Training: 30 min 00 s" in row
