"""Issue 15 item 9 (and item 5 for providers): webhook bodies that cannot be used are answered 400 and
not stored; over-long values are hashed (identifiers, decision #37) or cut deliberately (names), for every provider."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.test import Client
from tests.security.test_bad_input import DEEP, envelope
from tests.whatsapp.conftest import (  # noqa: F401 (fixtures)
    _media_root,
    gupshup_line,
    gupshup_payload,
    meta_line,
    meta_payload,
    post_gupshup,
    post_meta,
)

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line, WebhookEvent
from conversa.whatsapp.services import process_webhook_event

LONG = "9" * 5000


def post(line: Line, payload: Any) -> Any:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return Client().post(f"/webhooks/sandbox/{line.pk}/", data=body, content_type="application/json")


@pytest.mark.parametrize("payload, field", [
    ({}, "from"), ({"id": "x"}, "from"), ({"id": "x", "from": "no digits"}, "from"),
    ({"status": {}}, "status.id"), ({"status": {"id": "sandbox-1"}}, "status.status"), ([{}, {"id": "y"}], "from"),
    ("[]", "body"), ('"text"', "body"), ("42", "body"), ("null", "body"), ("{oops", "body"),
])
def test_sandbox_bodies_without_what_identifies_them_are_400_and_not_stored(demo, payload, field):
    response = post(demo["sales_line"], payload)
    envelope(response, 400, field)
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("payload", [
    {"from": "+5491155550001", "text": "sin id"}, {"id": None, "from": "+5491155550001", "text": "sin id"},
    {"id": {"a": 1}, "from": "+5491155550001", "text": "sin id"},
])
def test_a_message_without_a_usable_id_is_stored_once_under_an_id_derived_from_it(demo, payload):
    # Issue 13 item 9 (decisions #42): never lost, never merged with another id-less message, and a
    # redelivery of the same message is the same message.
    line = demo["sales_line"]
    assert post(line, payload).status_code == 200
    assert post(line, {**payload, "text": "otro sin id"}).status_code == 200
    drain_tasks()
    assert post(line, payload).json()["status"] == "duplicate"
    drain_tasks()
    ids = list(Message.objects.filter(line=line).values_list("provider_message_id", flat=True))
    assert len(ids) == 2 and all(i.startswith("derived:") for i in ids), ids


def test_a_batch_keeps_its_good_items_and_records_the_bad_ones(demo):
    line = demo["sales_line"]
    response = post(line, [{"id": "good-1", "from": "+5491155550001", "text": "hola"}, {"id": "bad-1"}])
    assert response.status_code == 200, response.content
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None and "from" in event.error
    assert list(Message.objects.filter(line=line).values_list("provider_message_id", flat=True)) == ["good-1"]


def test_a_long_name_is_cut_with_an_ellipsis(demo):
    line = demo["sales_line"]
    response = post(line, {"id": "m-long-name", "from": "+5491155550001", "name": "N" * 5000, "text": "hola"})
    assert response.status_code == 200, response.content
    drain_tasks()
    conversation = Conversation.objects.get(line=line, customer_phone="+5491155550001")
    assert conversation.customer_profile_name == "N" * 199 + "…"


def test_a_long_file_name_keeps_its_extension(demo):
    line = demo["sales_line"]
    response = post(line, {"id": "m-long-file", "from": "+5491155550001", "type": "document",
                           "filename": "f" * 5000 + ".pdf"})
    assert response.status_code == 200, response.content
    drain_tasks()
    message = Message.objects.get(provider_message_id="m-long-file")
    assert len(message.media_filename) == 255 and message.media_filename.endswith("….pdf")


def test_unreadable_events_stored_before_are_closed_not_retried_forever(demo):
    """Rows stored by older code (or by hand) that cannot be read end processed, with the reason."""
    line = demo["sales_line"]
    for body in (DEEP.encode(), b"{}", b'{"id": "x"}', b"not json"):
        event = WebhookEvent.objects.create(line=line, provider_kind="sandbox", body=body,
                                            body_sha256=str(hash(body)), headers={})
        process_webhook_event(event.pk)
        event.refresh_from_db()
        assert event.processed_at is not None and event.error, body[:20]
    assert not Message.objects.exists()


# --------------------------------------------------------------------------- Meta and GupShup
def _meta_text(**changes: str) -> bytes:
    data = json.loads(meta_payload("messages_text"))
    value = data["entry"][0]["changes"][0]["value"]
    if "name" in changes:
        value["contacts"][0]["profile"]["name"] = changes["name"]
    if "from" in changes:
        value["messages"][0]["from"] = changes["from"]
        value["contacts"][0]["wa_id"] = changes["from"]
    if "id" in changes:
        value["messages"][0]["id"] = changes["id"]
    return json.dumps(data).encode()


def test_meta_deep_body_is_400(meta_line):  # noqa: F811 (fixture)
    envelope(post_meta(meta_line, DEEP.encode()), 400)
    envelope(post_meta(meta_line, b"[1, 2]"), 400, "body")
    assert not WebhookEvent.objects.exists()


def test_meta_over_long_identifiers_are_stored_under_a_stand_in(meta_line):  # noqa: F811 (fixture)
    """Decision #37 (was a 400, #25): the customer's message is always stored; an id over its column
    is hashed (a replay still finds it), a sender over 15 digits gets a stand-in."""
    response = post_meta(meta_line, _meta_text(**{"from": LONG, "id": "w" * 5000}))
    assert response.status_code == 200, response.content
    drain_tasks()
    message = Message.objects.get(line=meta_line)
    assert message.provider_message_id == "sha256:" + hashlib.sha256(b"w" * 5000).hexdigest()
    assert message.conversation.customer_phone == "+" + "9" * 11 + message.conversation.customer_phone[12:]
    assert len(message.conversation.customer_phone) == 20


def test_meta_over_long_name_is_cut_and_processing_succeeds(meta_line):  # noqa: F811 (fixture)
    response = post_meta(meta_line, _meta_text(name="Ana " * 1250))
    assert response.status_code == 200, response.content
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None and event.attempts == 1
    conversation = Conversation.objects.get(line=meta_line)
    assert len(conversation.customer_profile_name) == 200 and conversation.customer_profile_name.endswith("…")


def _gupshup_text(**changes: str) -> bytes:
    data = json.loads(gupshup_payload("message_text"))
    if "name" in changes:
        data["payload"]["sender"]["name"] = changes["name"]
    if "id" in changes:
        data["payload"]["id"] = changes["id"]
    if "from" in changes:
        data["payload"]["source"] = data["payload"]["sender"]["phone"] = changes["from"]
    return json.dumps(data).encode()


def test_gupshup_bad_bodies(gupshup_line):  # noqa: F811 (fixture)
    envelope(post_gupshup(gupshup_line, DEEP.encode()), 400)
    assert not WebhookEvent.objects.exists()
    response = post_gupshup(gupshup_line, _gupshup_text(name="Ñ" * 5000))
    assert response.status_code == 200, response.content
    drain_tasks()
    assert WebhookEvent.objects.get(pk=response.json()["event"]).processed_at is not None
    assert Conversation.objects.get(line=gupshup_line).customer_profile_name == "Ñ" * 199 + "…"
