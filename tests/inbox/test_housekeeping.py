"""Closing stale conversations by the system."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conftest import results
from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.models import AuditEntry, Conversation


def age(conversation: Conversation, days: int) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=timezone.now() - datetime.timedelta(days=days))


def test_only_idle_conversations_of_the_chosen_statuses_close(api, customer_says):
    old_new = customer_says("hola", phone="+5491155554001")
    old_mine = customer_says("hola", phone="+5491155554002")
    fresh = customer_says("hola", phone="+5491155554003")
    api("agent1").post(f"/api/v1/conversations/{old_mine.pk}/capture/")
    age(old_new, 10)
    age(old_mine, 10)

    out = StringIO()
    call_command("close_stale_conversations", "--days", "7", "--status", "new", stdout=out)
    assert "Closed 1 conversation" in out.getvalue()
    assert Conversation.objects.get(pk=old_new.pk).status == "closed"
    assert Conversation.objects.get(pk=old_mine.pk).status == "attended"

    call_command("close_stale_conversations", "--days", "7", stdout=StringIO())
    closed = Conversation.objects.get(pk=old_mine.pk)
    assert closed.status == "closed" and closed.closed_by_system
    assert Conversation.objects.get(pk=fresh.pk).status == "new"
    assert results(api("agent1").get("/api/v1/inbox/personal/")) == []
    assert AuditEntry.objects.filter(kind="closed", data__reason="stale").count() == 2


def test_an_agent_freed_by_housekeeping_gets_the_waiting_conversations(customer_says):
    Campaign.objects.filter(name="Sales").update(routing="round_robin")
    AgentProfile.objects.filter(user__username="agent1").update(capacity=1)
    AgentProfile.objects.filter(user__username__in=["agent2", "agent3"]).update(status="offline")
    abandoned = customer_says("hola", phone="+5491155554021")
    waiting = customer_says("hola", phone="+5491155554022")
    assert Conversation.objects.get(pk=abandoned.pk).agent.username == "agent1"
    assert Conversation.objects.get(pk=waiting.pk).status == "new"  # agent1 is full
    age(abandoned, 10)

    call_command("close_stale_conversations", "--days", "7", "--status", "attended", stdout=StringIO())
    assert Conversation.objects.get(pk=abandoned.pk).status == "closed"
    handed = Conversation.objects.get(pk=waiting.pk)
    assert handed.status == "attended" and handed.agent.username == "agent1"


def test_bad_arguments_are_refused(demo):
    with pytest.raises(CommandError, match="statuses must be among"):
        call_command("close_stale_conversations", "--days", "7", "--status", "closed", stdout=StringIO())
    with pytest.raises(CommandError, match="positive"):
        call_command("close_stale_conversations", "--days", "0", stdout=StringIO())


def test_admin_action_closes_the_selected_conversations(customer_says, client):
    from django.contrib.auth import get_user_model

    chosen = customer_says("hola", phone="+5491155554011")
    other = customer_says("hola", phone="+5491155554012")
    client.force_login(get_user_model().objects.get(username="admin"))
    response = client.post("/admin/inbox/conversation/", {"action": "close_by_system",
                                                          "_selected_action": [chosen.pk]}, follow=True)
    assert response.status_code == 200 and b"1 conversation(s) closed." in response.content
    assert Conversation.objects.get(pk=chosen.pk).closed_by_system
    assert Conversation.objects.get(pk=other.pk).status == "new"
    assert AuditEntry.objects.get(kind="closed", conversation=chosen).actor.username == "admin"
