"""The general report and live snapshot, through the API: exact figures from a known scenario."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from tests.conftest import token_client
from tests.reports.conftest import ok

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.models import Conversation, Message
from conversa.reports import selectors
from conversa.whatsapp.models import Line


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["campaigns"]}


def test_summary_exact_figures(api: Callable[[str], APIClient], scenario: dict[str, Any]) -> None:
    sales = by_name(ok(api("supervisor").get("/api/v1/reports/summary/")))["Sales"]
    assert sales["messages_received"] == 4  # c1 twice, c2, c3
    # agent replies 1 (c1) + 2 (c2) + template (c5) + the line's goodbye on both closes
    assert sales["messages_sent"] == 6
    assert (sales["conversations"], sales["conversations_inbound"], sales["conversations_outbound"]) == (4, 3, 1)
    assert (sales["attended"], sales["not_attended"], sales["closed"], sales["closed_by_system"]) == (3, 1, 2, 0)
    assert {d["name"]: d["count"] for d in sales["dispositions"]} == {
        "Sale": 1, "Interested, call back": 0, "Not interested": 1, "Quote sent": 0}
    assert sales["not_dispositioned"] == 2
    # inbound only: c1 120 s and c2 300 s to the first agent message
    assert sales["first_response"] == {"count": 2, "median": 210.0, "average": 210.0}
    assert sales["time_to_capture"] == {"count": 2, "median": 80.0, "average": 80.0}
    assert sales["resolution"] == {"count": 2, "median": 750.0, "average": 750.0}
    agents = {a["name"]: a for a in sales["agents"]}
    assert agents["Laura Gómez"] | {"agent_id": 0} == {
        "agent_id": 0, "name": "Laura Gómez", "conversations": 2, "messages_sent": 2, "closed": 1,
        "first_response_avg": 120.0}
    assert agents["Martín Pérez"]["conversations"] == 1
    assert agents["Martín Pérez"]["messages_sent"] == 2
    assert agents["Martín Pérez"]["closed"] == 1
    assert agents["Martín Pérez"]["first_response_avg"] == 300.0
    assert set(agents) == {"Laura Gómez", "Martín Pérez"}


def test_support_and_campaign_filter(api: Callable[[str], APIClient], scenario: dict[str, Any]) -> None:
    support_id = Campaign.objects.get(name="Support").pk
    body = ok(api("supervisor").get(f"/api/v1/reports/summary/?campaign={support_id}"))
    assert [c["name"] for c in body["campaigns"]] == ["Support"]
    support = body["campaigns"][0]
    assert (support["messages_received"], support["conversations"], support["closed"]) == (1, 1, 1)
    assert {d["name"]: d["count"] for d in support["dispositions"]} == {
        "Solved": 1, "Escalated": 0, "Wrong number": 0}
    assert support["not_dispositioned"] == 0
    assert support["first_response"]["median"] == 40.0
    assert [(a["name"], a["conversations"]) for a in support["agents"]] == [("Carla Ruiz", 1)]


def test_date_filter_excludes_outside_rows(api: Callable[[str], APIClient], scenario: dict[str, Any]) -> None:
    month_ago = timezone.now() - timedelta(days=30)
    Conversation.objects.filter(pk=scenario["c2"].pk).update(created_at=month_ago)
    Message.objects.filter(conversation=scenario["c2"]).update(created_at=month_ago)
    client = api("supervisor")
    sales = by_name(ok(client.get("/api/v1/reports/summary/")))["Sales"]
    assert (sales["conversations"], sales["messages_received"], sales["messages_sent"]) == (3, 3, 3)
    assert {d["name"]: d["count"] for d in sales["dispositions"]}["Not interested"] == 0

    day = timezone.localdate(month_ago)
    only = by_name(ok(client.get(f"/api/v1/reports/summary/?from={day}&to={day}")))["Sales"]
    assert (only["conversations"], only["messages_received"], only["messages_sent"]) == (1, 1, 3)
    # an exclusive date-time end just before c2 leaves nothing
    end = (month_ago - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    empty = by_name(ok(client.get("/api/v1/reports/summary/", {"from": str(day - timedelta(days=1)),
                                                                "to": end})))["Sales"]
    assert empty["conversations"] == 0


def test_bad_range_is_400(api: Callable[[str], APIClient], demo: dict[str, Any]) -> None:
    client = api("supervisor")
    assert client.get("/api/v1/reports/summary/?from=yesterday").status_code == 400
    assert client.get("/api/v1/reports/summary/?from=2026-02-02&to=2026-01-01").status_code == 400


def test_visibility(api: Callable[[str], APIClient], scenario: dict[str, Any]) -> None:
    only_sales = User.objects.create_user("sales_sup", first_name="Sam")
    AgentProfile.objects.create(user=only_sales, role=AgentProfile.Role.SUPERVISOR)
    Campaign.objects.get(name="Sales").supervisors.add(only_sales)
    client = token_client("sales_sup")
    assert [c["name"] for c in ok(client.get("/api/v1/reports/summary/"))["campaigns"]] == ["Sales"]
    assert [c["name"] for c in ok(client.get("/api/v1/reports/live/"))["campaigns"]] == ["Sales"]
    support_id = Campaign.objects.get(name="Support").pk
    assert client.get(f"/api/v1/reports/summary/?campaign={support_id}").status_code == 404

    for agent in ("agent1", "agent3"):
        assert api(agent).get("/api/v1/reports/summary/").status_code == 403
        assert api(agent).get("/api/v1/reports/live/").status_code == 403
    # 401: token authentication comes first and asks for credentials (WWW-Authenticate: Token).
    assert APIClient().get("/api/v1/reports/summary/").status_code == 401
    admin = by_name(ok(api("admin").get("/api/v1/reports/summary/")))
    assert set(admin) == {"Sales", "Support"}


def test_live_snapshot(api: Callable[[str], APIClient], scenario: dict[str, Any],
                       customer_says: Callable[..., Conversation]) -> None:
    # agent2 takes a fresh one and keeps it open; agent1 pauses.
    c6 = customer_says("Still there?", phone="+5491155550006")
    ok(api("agent2").post(f"/api/v1/conversations/{c6.pk}/capture/"))
    AgentProfile.objects.filter(user__username="agent1").update(status=AgentProfile.Status.PAUSED)
    AgentProfile.objects.filter(user__username="agent2").update(capacity=3)
    Conversation.objects.filter(pk=scenario["c3"].pk).update(created_at=timezone.now() - timedelta(minutes=5))

    live = by_name(ok(api("supervisor").get("/api/v1/reports/live/")))
    sales = live["Sales"]
    assert sales["waiting"] == 1
    assert 299 <= sales["longest_wait_seconds"] <= 330
    assert sales["attended"] == 2  # c5 (agent1's outbound) and c6
    assert sales["agents_by_status"] == {"ready": 3, "paused": 1, "offline": 0}
    agents = {a["name"]: a for a in sales["agents"]}
    assert agents["Laura Gómez"]["status"] == "paused" and agents["Laura Gómez"]["open"] == 1
    assert (agents["Martín Pérez"]["open"], agents["Martín Pérez"]["capacity"]) == (1, 3)
    assert live["Support"]["waiting"] == 0 and live["Support"]["longest_wait_seconds"] is None


def test_live_counts_an_agents_conversations_in_every_campaign(scenario: dict[str, Any]) -> None:
    """An agent's open count takes her attended conversations in campaigns the supervisor does not
    see (capacity is per agent); a campaign's attended count takes those held by non-members."""
    only_sales = User.objects.create_user("sales_sup", first_name="Sam")
    AgentProfile.objects.create(user=only_sales, role=AgentProfile.Role.SUPERVISOR)
    Campaign.objects.get(name="Sales").supervisors.add(only_sales)
    client = token_client("sales_sup")

    def sales() -> dict[str, Any]:
        [campaign] = ok(client.get("/api/v1/reports/live/"))["campaigns"]
        assert campaign["name"] == "Sales"
        return campaign  # type: ignore[no-any-return]

    before = sales()
    support_line = Line.objects.get(number="+15550100002")
    agent1 = User.objects.get(username="agent1")
    outsider = User.objects.create_user("outsider", first_name="Otro", last_name="Agente")
    Conversation.objects.create(line=support_line, campaign=support_line.campaign, customer_phone="+5491177770001",
                                status=Conversation.Status.ATTENDED, agent=agent1)
    sales_line = Line.objects.get(number="+15550100001")
    Conversation.objects.create(line=sales_line, campaign=sales_line.campaign, customer_phone="+5491177770002",
                                status=Conversation.Status.ATTENDED, agent=outsider)
    after = sales()
    assert after["attended"] == before["attended"] + 1  # the outsider's, in Sales
    opened = {a["agent_id"]: a["open"] for a in after["agents"]}
    assert opened == {a["agent_id"]: a["open"] + (a["agent_id"] == agent1.pk) for a in before["agents"]}
    assert outsider.pk not in opened


def _bulk(n: int) -> None:
    """n closed conversations with two messages each, spread over agents, straight into the DB."""
    sales = Campaign.objects.get(name="Sales")
    line = Line.objects.filter(campaign=sales).first()
    assert line is not None
    agents = list(User.objects.filter(username__in=["agent1", "agent2", "agent3"]))
    now = timezone.now()
    for i in range(n):
        agent = agents[i % len(agents)]
        c = Conversation.objects.create(line=line, campaign=sales, customer_phone=f"+54911{i:08d}",
                                        agent=agent, status=Conversation.Status.CLOSED, attended_at=now,
                                        closed_at=now)
        Message.objects.create(conversation=c, line=line, direction=Message.Direction.INBOUND,
                               status=Message.Status.RECEIVED)
        Message.objects.create(conversation=c, line=line, direction=Message.Direction.OUTBOUND, sender=agent)


def _count_summary_queries() -> int:
    campaigns = Campaign.objects.all()
    rng = selectors.parse_range(None, None)
    with CaptureQueriesContext(connection) as ctx:
        selectors.summary(campaigns, rng)
        selectors.live_snapshot(campaigns)
    return len(ctx.captured_queries)


def test_query_count_does_not_grow(demo: dict[str, Any], django_assert_max_num_queries: Any) -> None:
    _bulk(5)
    few = _count_summary_queries()
    _bulk(45)
    assert Conversation.objects.count() == 50
    many = _count_summary_queries()
    assert few == many
    campaigns = Campaign.objects.all()
    with django_assert_max_num_queries(8):
        result = selectors.summary(campaigns, selectors.parse_range(None, None))
    assert {s.name: s.conversations for s in result}["Sales"] == 50
    # The campaigns, their agents, and every count in one statement (decisions #70).
    with django_assert_max_num_queries(3):
        selectors.live_snapshot(campaigns)


@pytest.mark.parametrize("path", ["/api/v1/reports/summary/", "/api/v1/reports/live/"])
def test_documented_in_openapi(path: str, demo: dict[str, Any]) -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert path in schema.json()["paths"]


def test_durations_are_medians_and_averages_of_the_clamped_values(demo: dict[str, Any]) -> None:
    """Medians (odd and even counts), averages, sub-second values and clocks that disagree (a
    duration below zero counts as zero), as statistics.median/fmean of the seconds give them."""
    sales = Campaign.objects.get(name="Sales")
    line = Line.objects.filter(campaign=sales).first()
    assert line is not None
    agent1, agent2 = User.objects.get(username="agent1"), User.objects.get(username="agent2")
    t0 = timezone.now() - timedelta(hours=2)
    # (outbound, agent, to capture, to first response, to close), in seconds
    rows = [(False, agent1, -30, 45.5, 100), (False, agent1, 10, -2, 200), (False, agent2, 20.25, 61, 300.5),
            (False, agent2, 35, None, 401), (False, None, None, None, -5), (True, agent1, 400, 3, 1000),
            (False, agent2, 400, 7.125, None)]
    for n, (outbound, agent, capture, reply, close) in enumerate(rows):
        Conversation.objects.create(
            line=line, campaign=sales, customer_phone=f"+54911777{n:05d}", agent=agent, is_outbound=outbound,
            status=Conversation.Status.CLOSED if close is not None else Conversation.Status.ATTENDED,
            attended_at=t0 + timedelta(seconds=capture) if capture is not None else None,
            first_response_at=t0 + timedelta(seconds=reply) if reply is not None else None,
            closed_at=t0 + timedelta(seconds=close) if close is not None else None)
    Conversation.objects.filter(campaign=sales).update(created_at=t0)

    def figures(seconds: list[float]) -> dict[str, Any]:
        values = [max(s, 0.0) for s in seconds]
        return {"count": len(values), "median": round(statistics.median(values), 1),
                "average": round(statistics.fmean(values), 1)}

    result = {s.name: s for s in selectors.summary(Campaign.objects.all(), selectors.parse_range(None, None))}
    summary = result["Sales"]
    inbound = [r for r in rows if not r[0]]
    assert asdict(summary.time_to_capture) == figures([r[2] for r in inbound if r[2] is not None])
    assert asdict(summary.first_response) == figures([r[3] for r in inbound if r[3] is not None])
    assert asdict(summary.resolution) == figures([r[4] for r in rows if r[4] is not None])  # outbound too
    assert summary.time_to_capture.median == 20.2 and summary.resolution.median == 250.2  # odd, even count
    assert summary.first_response.average == round((45.5 + 0 + 61 + 7.125) / 4, 1)
    agents = {a.agent_id: a for a in summary.agents}
    assert agents[agent1.pk].first_response_avg == round((45.5 + 0) / 2, 1)  # inbound only
    assert agents[agent2.pk].first_response_avg == round((61 + 7.125) / 2, 1)
    assert (agents[agent1.pk].conversations, agents[agent1.pk].closed) == (3, 3)
    assert (summary.conversations, summary.conversations_outbound, summary.attended, summary.closed) == (7, 1, 6, 6)
