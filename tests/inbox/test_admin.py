"""The admin shows conversations, messages, the audit trail and agent status but never writes them
itself: a write there would skip the audit, the live events and the hand-out of waiting chats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conversa.accounts.models import AgentProfile
from conversa.inbox.models import AuditEntry, Conversation, Message


@pytest.fixture
def admin_client(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def test_a_conversations_status_and_agent_cannot_be_changed_in_the_admin(
        admin_client: Client, customer_says: Callable[..., Conversation]) -> None:
    conversation = customer_says("hola", phone="+5491155554101")
    agent = get_user_model().objects.get(username="agent1")
    url = f"/admin/inbox/conversation/{conversation.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "hola" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()  # a view, not a change form
    response = admin_client.post(url, {"status": "closed", "agent": agent.pk, "campaign": conversation.campaign_id,
                                       "line": conversation.line_id, "customer_phone": conversation.customer_phone})
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert (conversation.status, conversation.agent_id) == (Conversation.Status.NEW, None)
    assert admin_client.get("/admin/inbox/conversation/add/").status_code == 403
    assert admin_client.post(f"/admin/inbox/conversation/{conversation.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_messages_and_audit_rows_are_read_only(admin_client: Client,
                                               customer_says: Callable[..., Conversation]) -> None:
    conversation = customer_says("hola", phone="+5491155554102")
    message = Message.objects.get(conversation=conversation)
    event = AuditEntry.objects.filter(conversation=conversation).first()
    assert event is not None
    assert admin_client.get(f"/admin/inbox/message/{message.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/inbox/message/{message.pk}/change/", {"body": "edited"}).status_code == 403
    assert admin_client.get("/admin/inbox/message/add/").status_code == 403
    event_url = f"/admin/inbox/auditentry/{event.pk}/change/"
    assert admin_client.post(event_url, {"kind": "closed"}).status_code == 403
    assert admin_client.get("/admin/inbox/auditentry/add/").status_code == 403
    message.refresh_from_db()
    event.refresh_from_db()
    assert (message.body, event.kind) == ("hola", AuditEntry.Kind.CREATED)


def test_an_agents_status_is_shown_but_not_editable(admin_client: Client) -> None:
    profile = AgentProfile.objects.get(user__username="agent1")
    before = profile.status
    url = f"/admin/accounts/agentprofile/{profile.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="status"' not in page
    changed = "paused" if before != "paused" else "ready"
    response = admin_client.post(url, {"user": profile.user_id, "role": profile.role, "group": profile.group_id or "",
                                       "status": changed, "capacity": 7})
    assert response.status_code == 302, response.content
    profile.refresh_from_db()
    assert (profile.status, profile.capacity) == (before, 7)  # the rest of the profile still saves
