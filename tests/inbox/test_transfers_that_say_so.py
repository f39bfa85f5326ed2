"""Transfers that say so (issue 11): a system line in the thread naming who, to whom and the note;
back to the general inbox or to another campaign's; targets filtered by skill, status and capacity;
a supervisor reads an agent's conversation and writes only after joining (bug 2)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.models import AuditEntry, Conversation
from conversa.realtime.models import EventTarget, StreamEvent

User = get_user_model()


@pytest.fixture
def attended(api, customer_says) -> Conversation:
    conversation = customer_says("Hola", name="ana_99")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def uid(username: str) -> int:
    return User.objects.get(username=username).pk


def console(username: str) -> Client:
    client = Client()
    assert client.post("/login/", {"username": username, "password": "demo"}).status_code == 302
    return client


def thread_html(username: str, conversation: Conversation) -> str:
    response = console(username).get(f"/console/c/{conversation.pk}/messages/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_transfer_with_a_note_is_a_system_line_in_the_thread(api, attended):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                  {"agent": uid("agent2"), "note": "Wants the <b>pro</b> plan"}, format="json")
    assert response.status_code == 200, response.content
    html = thread_html("agent2", attended)
    assert "Laura Gómez transferred this conversation to Martín Pérez: Wants the &lt;b&gt;pro&lt;/b&gt; plan" in html
    assert 'data-testid="system-line"' in html
    assert "Laura Gómez transferred" in thread_html("supervisor", attended)
    event = StreamEvent.objects.filter(type="conversation.transferred").latest("id")
    assert event.payload["note"] == "Wants the <b>pro</b> plan" and event.payload["by_name"] == "Laura Gómez"
    assert event.payload["to_name"] == "Martín Pérez"


@pytest.mark.parametrize("change, message", [
    ({"status": "offline"}, "Martín Pérez is not ready (offline)."),
    ({"status": "paused"}, "Martín Pérez is not ready (paused)."),
    ({"capacity": 0}, "Martín Pérez has no free slot."),
])
def test_targets_must_be_ready_with_a_free_slot(api, attended, change, message):
    AgentProfile.objects.filter(user__username="agent2").update(**change)
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/transfer/", {"agent": uid("agent2")},
                                  format="json")
    assert response.status_code == 400 and response.json()["field"] == "agent"
    assert response.json()["message"] == message
    assert Conversation.objects.get(pk=attended.pk).agent.username == "agent1"


def test_the_transfer_dialog_offers_only_who_can_take_it(api, attended):
    AgentProfile.objects.filter(user__username="agent3").update(status="offline")
    html = console("agent1").get(f"/console/c/{attended.pk}/transfer/dialog/").content.decode()
    labels = re.findall(r'data-testid="transfer-target">(.*?)</label>', html, re.S)
    rows = {name: label for label in labels for name in ("Martín Pérez", "Carla Ruiz", "Diego Sosa") if name in label}
    assert "disabled" not in rows["Martín Pérez"]
    assert "disabled" in rows["Carla Ruiz"] and "Offline" in rows["Carla Ruiz"]
    assert "disabled" in rows["Diego Sosa"] and "no WhatsApp skill" in rows["Diego Sosa"]
    assert 'value="inbox"' in html and "Support" in html


def test_back_to_the_general_inbox(api, attended):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                  {"inbox": True, "note": "not mine"}, format="json")
    assert response.status_code == 200, response.content
    conversation = Conversation.objects.get(pk=attended.pk)
    assert conversation.status == "new" and conversation.agent is None
    assert attended.pk in [c["id"] for c in api("agent2").get("/api/v1/inbox/general/").json()["results"]]
    assert "Laura Gómez sent this conversation back to the general inbox: not mine" in thread_html("agent2", attended)
    event = StreamEvent.objects.filter(type="conversation.transferred").latest("id")
    groups = set(EventTarget.objects.filter(event=event).values_list("group", flat=True))
    assert {f"agent-{uid('agent1')}", f"campaign-{attended.campaign_id}"} <= groups


def test_to_another_campaigns_general_inbox(api, attended):
    support = Campaign.objects.get(name="Support")
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                  {"inbox": True, "campaign": support.pk}, format="json")
    assert response.status_code == 200, response.content
    conversation = Conversation.objects.get(pk=attended.pk)
    assert conversation.campaign_id == support.pk and conversation.status == "new"
    # agent3 works Support; agent2 (Sales only) no longer sees it.
    assert attended.pk in [c["id"] for c in api("agent3").get("/api/v1/inbox/general/").json()["results"]]
    assert api("agent2").get(f"/api/v1/conversations/{attended.pk}/").status_code == 404
    assert "sent this conversation to the general inbox of Support" in thread_html("agent3", attended)
    bad = api("agent3").post(f"/api/v1/conversations/{attended.pk}/capture/")
    assert bad.status_code == 200
    response = api("agent3").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                  {"inbox": True, "campaign": 999999}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "campaign"


def test_a_supervisor_reads_and_writes_only_after_joining(api, attended, run_tasks):
    url = f"/api/v1/conversations/{attended.pk}/messages/"
    refused = api("supervisor").post(url, {"text": "Hola, soy la supervisora"}, format="json")
    assert refused.status_code == 403 and "Join" in refused.json()["message"]
    pane = console("supervisor").get(f"/console/c/{attended.pk}/").content.decode()
    assert "Attended by Laura Gómez" in pane and 'data-testid="btn-join"' in pane
    assert "data-composer" not in pane and 'data-testid="btn-close"' not in pane

    client = console("supervisor")
    assert client.post(f"/console/c/{attended.pk}/join/").status_code == 204
    assert AuditEntry.objects.filter(conversation=attended, kind="joined").count() == 1
    assert client.post(f"/console/c/{attended.pk}/join/").status_code == 204  # twice: once
    assert AuditEntry.objects.filter(conversation=attended, kind="joined").count() == 1
    assert "Sofía Supervisor joined the conversation as supervisor." in thread_html("agent1", attended)
    assert "data-composer" in client.get(f"/console/c/{attended.pk}/").content.decode()
    sent = api("supervisor").post(url, {"text": "Hola, soy la supervisora"}, format="json")
    assert sent.status_code == 201, sent.content
    assert StreamEvent.objects.filter(type="conversation.joined").exists()


def test_a_supervisor_reassigns_to_an_agent_or_back_to_new(api, attended):
    response = api("supervisor").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                      {"agent": uid("agent2"), "note": "covering"}, format="json")
    assert response.status_code == 200, response.content
    assert "Sofía Supervisor reassigned this conversation to Martín Pérez: covering" in thread_html("agent2", attended)
    event = StreamEvent.objects.filter(type="conversation.transferred").latest("id")
    assert event.payload["from_agent"] == uid("agent1") and event.payload["by"] == uid("supervisor")
    response = api("supervisor").post(f"/api/v1/conversations/{attended.pk}/transfer/", {"inbox": True},
                                      format="json")
    assert response.status_code == 200
    assert Conversation.objects.get(pk=attended.pk).status == "new"
