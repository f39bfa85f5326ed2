"""Capture: exactly one agent wins."""

from __future__ import annotations

import threading

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.conftest import api_token

from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.models import AuditEntry, Conversation


def test_capture_moves_the_conversation_to_her_personal_inbox(api, customer_says):
    conversation = customer_says("Hola")
    response = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "attended"
    assert body["agent_name"] == "Laura Gómez"
    conversation.refresh_from_db()
    assert conversation.agent.username == "agent1"
    assert conversation.attended_at is not None


def test_capture_of_a_taken_conversation_is_409_naming_the_holder(api, customer_says):
    conversation = customer_says("Hola")
    assert api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    lost = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert lost.status_code == 409
    assert "Martín Pérez" in lost.json()["message"]
    # Context sits under "extra", apart from the envelope's own keys.
    assert lost.json()["extra"] == {"agent": Conversation.objects.get(pk=conversation.pk).agent_id,
                                    "agent_name": "Martín Pérez"}
    # Capturing again one's own conversation is harmless (a double click).
    assert api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    assert AuditEntry.objects.filter(kind="captured", conversation=conversation).count() == 1


def _make_agents(count: int) -> list[str]:
    group = AgentGroup.objects.get(name="WhatsApp agents")
    sales = Campaign.objects.get(name="Sales")
    tokens = []
    User = get_user_model()
    for n in range(count):
        user = User.objects.create_user(f"racer{n}", password="x")
        AgentProfile.objects.create(user=user, group=group)
        sales.agents.add(user)
        tokens.append(api_token(user.username))
    return tokens


@pytest.mark.parametrize("racers", [12])
def test_concurrent_captures_exactly_one_wins(live_server, customer_says, racers):
    """Many agents click the same conversation at the same instant, over real HTTP, each request
    on its own server thread and database connection: one 200, all others 409."""
    conversations = [customer_says(f"carrera {i}", phone=f"+549115555{i:04d}") for i in range(5)]
    tokens = _make_agents(racers)
    outcomes: dict[int, list[tuple[int, str]]] = {c.pk: [] for c in conversations}
    lock = threading.Lock()

    for conversation in conversations:
        barrier = threading.Barrier(racers)

        def race(token: str, conversation_id: int = conversation.pk, barrier: threading.Barrier = barrier) -> None:
            with httpx.Client(base_url=live_server.url, timeout=30) as http:
                barrier.wait()
                response = http.post(f"/api/v1/conversations/{conversation_id}/capture/",
                                     headers={"Authorization": f"Token {token}"})
            with lock:
                extra = response.json().get("extra", {})
                outcomes[conversation_id].append((response.status_code, extra.get("agent_name", "")))

        threads = [threading.Thread(target=race, args=(t,)) for t in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    for conversation in conversations:
        codes = sorted(code for code, _ in outcomes[conversation.pk])
        assert codes == [200] + [409] * (racers - 1), (connection.vendor, codes)
        conversation.refresh_from_db()
        assert conversation.status == Conversation.Status.ATTENDED
        assert AuditEntry.objects.filter(kind="captured", conversation=conversation).count() == 1
        # Every loser was told who won.
        winner = conversation.agent.username
        assert all(name == winner for code, name in outcomes[conversation.pk] if code == 409)
    print(f"\n[capture race] vendor={connection.vendor} conversations={len(conversations)} "
          f"agents={racers}: each conversation 1 winner, {racers - 1} x 409")


def test_a_capture_that_finds_the_conversation_taken_costs_what_reading_oneself_costs(api, customer_says):
    """Of 200 agents pressing Capture at once, 199 find it taken: their answer is one read (with
    the holder), no transaction and no UPDATE, as many statements as `GET /api/v1/me/`."""
    conversation = customer_says("Hola")
    agent1 = api("agent1")
    assert api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    agent1.get("/api/v1/me/")  # anything loaded once per process is loaded
    with CaptureQueriesContext(connection) as me:
        assert agent1.get("/api/v1/me/").status_code == 200
    with CaptureQueriesContext(connection) as lost:
        response = agent1.post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert response.status_code == 409
    assert response.json()["extra"]["agent_name"] == "Martín Pérez"
    statements = [q["sql"] for q in lost.captured_queries]
    assert not [sql for sql in statements if sql.startswith(("UPDATE", "BEGIN", "SAVEPOINT"))], statements
    assert len(statements) <= len(me.captured_queries), statements


def test_a_holder_outside_the_conversations_campaign_is_named_only_to_who_shares_a_campaign_with_her(
        api, customer_says):
    conversation = customer_says("Hola")  # Sales
    outsider = get_user_model().objects.create_user("outsider", first_name="Olga", last_name="Ruiz")
    AgentProfile.objects.create(user=outsider, group=AgentGroup.objects.get(name="WhatsApp agents"))
    Campaign.objects.get(name="Support").agents.add(outsider)  # agent3 works on Support too; agent1 does not
    Conversation.objects.filter(pk=conversation.pk).update(agent=outsider, status=Conversation.Status.ATTENDED)
    shares = api("agent3").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert shares.status_code == 409
    assert shares.json()["extra"] == {"agent": outsider.pk, "agent_name": "Olga Ruiz"}
    stranger = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert stranger.status_code == 409
    assert stranger.json()["extra"] == {"agent": None, "agent_name": "another agent"}
    assert "Olga" not in stranger.content.decode()


def test_a_supervisor_captures_and_finds_taken_like_an_agent(api, customer_says):
    """A supervisor's campaigns are a DISTINCT query (hers to supervise or to attend): the capture's
    visibility subquery must still select one column (it selected the ordering column too: a 500)."""
    conversation = customer_says("Hola")
    taken = api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert taken.status_code == 200
    lost = api("supervisor").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert lost.status_code == 409, lost.content
    assert "Martín Pérez" in lost.json()["message"]
    waiting = customer_says("Otra consulta", phone="+5491100000999")
    answer = api("supervisor").post(f"/api/v1/conversations/{waiting.pk}/capture/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "attended"
