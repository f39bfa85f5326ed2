"""Inbox pages and thread pages are built without a serializer per row (issue 9): they must answer
exactly what ConversationSerializer / MessageSerializer (the documented shape) answer, and read a
constant number of queries whatever the number of rows."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from conversa.contacts.models import Contact
from conversa.inbox import selectors
from conversa.inbox.models import Conversation, Message
from conversa.inbox.serializers import (
    ConversationSerializer,
    MessageSerializer,
    conversation_list,
    conversation_rows,
    message_list,
)
from conversa.whatsapp.models import Line, MessageTemplate

NOW = timezone.now()


def _as_json(data: Any) -> Any:
    """What a client reads: the API's own renderer, parsed back."""
    return json.loads(JSONRenderer().render(data))


def _varied_conversations(line: Line, *, agent: Any, count: int = 6, prefix: str = "+5491170") -> None:
    """New and attended rows; with and without a contact, a profile name, message times, an open
    or expired window; customer text with markup."""
    contact = Contact.objects.create(database=line.campaign.contact_database, phone=f"{prefix}9999",
                                     first_name="Zoë <b>", last_name="O'Brien")
    rows = []
    for i in range(count):
        inbound = None if i % 3 == 0 else NOW - timedelta(hours=1 if i % 2 else 30)
        rows.append(Conversation(
            line=line, campaign=line.campaign, customer_phone=f"{prefix}{i:04d}",
            customer_profile_name="" if i % 2 else f"Ana \"{i}\" <i>",
            customer_username=f"user{i}" if i % 4 == 1 else "",
            contact=contact if i % 3 == 1 else None, last_inbound_at=inbound,
            last_message_at=None if i == count - 1 else NOW - timedelta(minutes=i),
            last_message_preview=f"hola & <{i}>",
            unread_count=i, is_outbound=bool(i % 2)))
        rows.append(Conversation(
            line=line, campaign=line.campaign, customer_phone=f"{prefix}5{i:03d}", status=Conversation.Status.ATTENDED,
            agent=agent, attended_at=NOW - timedelta(minutes=i), last_inbound_at=inbound,
            contact=contact if i % 2 else None,
            last_message_at=NOW - timedelta(seconds=i), last_message_preview="ok", unread_count=i % 2))
    Conversation.objects.bulk_create(rows)


def test_inbox_pages_answer_exactly_what_the_serializer_answers(api, demo):
    agent3 = get_user_model().objects.get(username="agent3")
    agent3.first_name, agent3.last_name = "Carla", "Ñandú"
    agent3.save()
    _varied_conversations(demo["sales_line"], agent=agent3)
    _varied_conversations(demo["support_line"], agent=agent3, prefix="+5491180")
    for kind, read, read_values in (("general", selectors.general_inbox, selectors.general_inbox_values),
                                    ("personal", selectors.personal_inbox, selectors.personal_inbox_values)):
        rows = read(agent3, limit=200).rows
        plain = read_values(agent3, limit=200).rows
        assert len(rows) >= 12
        documented = ConversationSerializer(rows, many=True).data
        built = conversation_list(rows)
        assert [list(r) for r in built] == [list(r) for r in documented], "same fields, same order"
        assert _as_json(built) == _as_json(documented)
        from_plain = conversation_rows(plain)  # what the API's pages build, from plain rows
        assert [list(r) for r in from_plain] == [list(r) for r in documented], "same fields, same order"
        assert _as_json(from_plain) == _as_json(documented)
        assert _as_json(conversation_rows(selectors.row_values(c) for c in rows)) == _as_json(documented)
        answered = api("agent3").get(f"/api/v1/inbox/{kind}/?limit=200").json()["results"]
        assert answered == _as_json(documented)
        with timezone.override("America/Argentina/Buenos_Aires"):  # times in the active zone, as DRF's
            assert _as_json(conversation_list(rows)) == _as_json(ConversationSerializer(rows, many=True).data)
            assert _as_json(conversation_rows(plain)) == _as_json(ConversationSerializer(rows, many=True).data)
    assert {c["agent_name"] for c in answered} == {"Carla Ñandú"}
    assert {c["window_open"] for c in answered} == {True, False}


def test_thread_pages_answer_exactly_what_the_serializer_answers(api, demo):
    line = demo["sales_line"]
    agent1 = get_user_model().objects.get(username="agent1")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491170000",
                                               status=Conversation.Status.ATTENDED, agent=agent1)
    template = MessageTemplate.objects.filter(line=line).first()
    first = Message.objects.create(conversation=conversation, line=line, direction="in", body="hola <b>",
                                   provider_timestamp=NOW - timedelta(minutes=9), provider_message_id="wamid.1")
    Message.objects.create(conversation=conversation, line=line, direction="out", sender=agent1, body="¿Sí?",
                           reply_to=first, client_message_id="c-1", status=Message.Status.DELIVERED,
                           status_changed_at=NOW)
    Message.objects.create(conversation=conversation, line=line, direction="out", kind="template", template=template,
                           status=Message.Status.UNCONFIRMED, resend_offered_at=NOW)
    Message.objects.create(conversation=conversation, line=line, direction="out", status=Message.Status.UNCONFIRMED)
    Message.objects.create(conversation=conversation, line=line, direction="out", status=Message.Status.FAILED,
                           error_code="131047", error_title="Re-engagement")
    Message.objects.create(conversation=conversation, line=line, direction="in", kind="location",
                           payload={"latitude": -34.6, "longitude": -58.4, "name": "Obelisco"})
    image = Message(conversation=conversation, line=line, direction="in", kind="image", media_mime="image/png",
                    media_filename="a.png")
    image.media.save("a.png", ContentFile(b"\x89PNG"), save=False)
    image.save()
    rows = selectors.conversation_messages(conversation, limit=200).rows
    assert len(rows) == 7
    documented = MessageSerializer(rows, many=True).data
    built = message_list(rows)
    assert [list(r) for r in built] == [list(r) for r in documented]
    assert _as_json(built) == _as_json(documented)
    answered = api("agent1").get(f"/api/v1/conversations/{conversation.pk}/messages/?limit=200").json()
    assert answered == _as_json(documented)
    assert {m["resend_offered"] for m in answered} == {True, False}
    assert any(m["media_url"] for m in answered)


def _queries(request: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200, response.content[:500]
    return len(captured)


@pytest.mark.parametrize("path", ["/api/v1/inbox/general/", "/api/v1/inbox/personal/"])
def test_inbox_pages_read_a_constant_number_of_queries(api, demo, path):
    agent3 = get_user_model().objects.get(username="agent3")
    client = api("agent3")
    client.get(path)  # token and session lookups warmed alike
    _varied_conversations(demo["sales_line"], agent=agent3, count=2)
    _varied_conversations(demo["support_line"], agent=agent3, count=2, prefix="+5491180")
    few = _queries(lambda: client.get(path))
    _varied_conversations(demo["sales_line"], agent=agent3, count=40, prefix="+5491171")
    _varied_conversations(demo["support_line"], agent=agent3, count=40, prefix="+5491181")
    many = _queries(lambda: client.get(path))
    assert few == many


def test_thread_and_console_pages_read_a_constant_number_of_queries(api, demo):
    line = demo["sales_line"]
    agent1 = get_user_model().objects.get(username="agent1")
    console = Client()
    console.force_login(agent1)
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491170000",
                                               status=Conversation.Status.ATTENDED, agent=agent1, last_inbound_at=NOW)

    def add_messages(count: int) -> None:
        Message.objects.bulk_create([Message(conversation=conversation, line=line, direction="out" if i % 2 else "in",
                                             sender=agent1 if i % 2 else None, body=f"m{i}") for i in range(count)])

    pages = {
        "thread": lambda: api("agent1").get(f"/api/v1/conversations/{conversation.pk}/messages/"),
        "console": lambda: console.get("/"),
        "lists": lambda: console.get("/console/lists/", HTTP_HX_REQUEST="true"),
        "pane": lambda: console.get(f"/console/c/{conversation.pk}/", HTTP_HX_REQUEST="true"),
    }
    add_messages(2)
    _varied_conversations(line, agent=agent1, count=2)
    for request in pages.values():
        request()
    few = {name: _queries(request) for name, request in pages.items()}
    add_messages(60)
    _varied_conversations(line, agent=agent1, count=40, prefix="+5491171")
    many = {name: _queries(request) for name, request in pages.items()}
    assert few == many
