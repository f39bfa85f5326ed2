"""Issue 8 item 6: one bad item never costs the others. A batch carrying every value that used to
lose messages (NUL, a lone surrogate, a 300-character file name, a 250-character profile name, a
25-digit sender, a 250-character message id) is stored whole, through the real signed endpoint,
on SQLite and on PostgreSQL (where NUL in text raises); an item that still fails is kept with its
error, retried with back-off by the sweep, and reported."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from tests.whatsapp.conftest import meta_payload, post_gupshup, post_meta

from conftest import drain_tasks
from conversa.core.worker import sweep
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line, WebhookEvent, WebhookItemFailure
from fakes.meta import MetaFake

LONG_ID = "wamid." + "L" * 244  # 250 characters
SENDER_25 = "5491155550003" + "7" * 12  # 25 digits
LONG_NAME = "Ñandú " * 41 + "ab"  # 248 characters
LONG_FILE = "informe-" + "x" * 288 + ".pdf"  # 300 characters


def _hashed(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _meta_batch() -> dict[str, Any]:
    """One Meta callback, eight messages from five customers; the middle ones are the poison."""
    data = json.loads(meta_payload("messages_text"))
    value = data["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]

    def text(mid: str, sender: str, body: str) -> dict[str, Any]:
        return {**copy.deepcopy(template), "id": mid, "from": sender, "text": {"body": body}}

    value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": "5491155550001"},
                         {"profile": {"name": LONG_NAME}, "wa_id": "5491155550002"},
                         {"profile": {"name": "Muy largo"}, "wa_id": SENDER_25}]
    value["messages"] = [
        text("wamid.ok-1", "5491155550001", "primero"),
        text("wamid.nul", "5491155550001", "con\u0000nulo"),
        text("wamid.surrogate", "5491155550001", "medio emoji \ud83d fin"),
        {**copy.deepcopy(template), "id": "wamid.doc", "from": "5491155550001", "type": "document",
         "document": {"id": "778899", "mime_type": "application/pdf", "filename": LONG_FILE}},
        text("wamid.name", "5491155550002", "nombre largo"),
        text("wamid.sender", SENDER_25, "remitente largo"),
        text(LONG_ID, "5491155550001", "id largo"),
        text("wamid.ok-2", "5491155550001", "último"),
    ]
    return data


def test_a_poisoned_meta_batch_is_stored_whole(meta_line: Line, meta_fake: MetaFake):
    meta_fake.media["778899"] = (b"%PDF-1.4 tiny", "application/pdf")
    body = json.dumps(_meta_batch()).encode()
    response = post_meta(meta_line, body)
    assert response.status_code == 200, response.content
    drain_tasks()

    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None and event.attempts == 1, event.error
    assert not WebhookItemFailure.objects.exists()
    stored = {m.provider_message_id: m for m in Message.objects.filter(line=meta_line)}
    assert set(stored) == {"wamid.ok-1", "wamid.nul", "wamid.surrogate", "wamid.doc", "wamid.name",
                           "wamid.sender", _hashed(LONG_ID), "wamid.ok-2"}
    assert stored["wamid.nul"].body == "connulo"
    assert stored["wamid.surrogate"].body == "medio emoji \ufffd fin"
    document = stored["wamid.doc"]
    assert len(document.media_filename) == 255 and document.media_filename.endswith("….pdf")
    assert document.media and document.media.read() == b"%PDF-1.4 tiny"
    assert stored["wamid.name"].conversation.customer_profile_name == LONG_NAME[:199] + "…"
    # More than 15 digits: the first 11 kept, 8 derived from all 25 (the same on every message).
    sender_phone = stored["wamid.sender"].conversation.customer_phone
    assert len(sender_phone) == 20 and sender_phone.startswith("+" + SENDER_25[:11])
    assert stored[_hashed(LONG_ID)].body == "id largo"

    # A replay (re-serialised, so stored as a new event) finds every message by the same ids.
    replay = post_meta(meta_line, json.dumps(_meta_batch(), indent=1).encode())
    assert replay.status_code == 200 and replay.json()["status"] == "stored"
    drain_tasks()
    assert Message.objects.filter(line=meta_line).count() == 8
    assert Conversation.objects.filter(line=meta_line, customer_phone=sender_phone).count() == 1


def test_a_poisoned_sandbox_batch_is_stored_whole(demo):
    line = demo["sales_line"]
    batch = [
        {"id": "sbx-ok-1", "from": "+5491155550001", "name": "Ana", "text": "primero"},
        {"id": "sbx-nul", "from": "+5491155550001", "name": "A\u0000na", "text": "con\u0000nulo"},
        {"id": "sbx-surrogate", "from": "+5491155550001", "text": "emoji \ud83d roto"},
        {"id": "sbx-doc", "from": "+5491155550001", "type": "document", "filename": LONG_FILE},
        {"id": "sbx-name", "from": "+5491155550002", "name": LONG_NAME, "text": "nombre largo"},
        {"id": "sbx-sender", "from": "+" + SENDER_25, "text": "remitente largo"},
        {"id": LONG_ID, "from": "+5491155550001", "text": "id largo"},
        {"id": "sbx-ok-2", "from": "+5491155550001", "text": "último"},
    ]
    response = Client().post(f"/webhooks/sandbox/{line.pk}/", data=json.dumps(batch),
                             content_type="application/json")
    assert response.status_code == 200, response.content
    drain_tasks()
    stored = {m.provider_message_id: m for m in Message.objects.filter(line=line, direction="in")}
    assert set(stored) == {"sbx-ok-1", "sbx-nul", "sbx-surrogate", "sbx-doc", "sbx-name", "sbx-sender",
                           _hashed(LONG_ID), "sbx-ok-2"}
    assert stored["sbx-nul"].body == "connulo"
    assert stored["sbx-surrogate"].body == "emoji \ufffd roto"
    assert stored["sbx-doc"].media_filename.endswith("….pdf") and len(stored["sbx-doc"].media_filename) == 255
    assert stored["sbx-name"].conversation.customer_profile_name == LONG_NAME[:199] + "…"
    assert stored["sbx-sender"].conversation.customer_phone.startswith("+" + SENDER_25[:11])
    assert not WebhookItemFailure.objects.exists()


def test_gupshup_nul_and_long_id_are_stored(gupshup_line: Line):
    from tests.security.test_webhook_input import _gupshup_text

    body = _gupshup_text(id="g" * 250, name="Lu\u0000cía", **{"from": SENDER_25})
    data = json.loads(body)
    data["payload"]["payload"]["text"] = "hola\u0000 \ud83d"
    response = post_gupshup(gupshup_line, json.dumps(data).encode())
    assert response.status_code == 200, response.content
    drain_tasks()
    message = Message.objects.get(line=gupshup_line)
    assert message.provider_message_id == _hashed("g" * 250)
    assert message.body == "hola \ufffd"
    assert message.conversation.customer_profile_name == "Lucía"


# --------------------------------------------------------------------------- an item that still fails
def _poison_previews(*, on: bool) -> None:
    """A real database failure for one item: a trigger refusing a conversation update whose
    preview starts with "boom" (what no cleaning can fix), in each database's own dialect."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if on:
                cursor.execute("CREATE OR REPLACE FUNCTION conversa_poison() RETURNS trigger AS $$ BEGIN "
                               "IF NEW.last_message_preview LIKE 'boom%' THEN RAISE EXCEPTION 'poisoned item'; "
                               "END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
                cursor.execute("CREATE TRIGGER conversa_poison BEFORE UPDATE ON inbox_conversation "
                               "FOR EACH ROW EXECUTE FUNCTION conversa_poison()")
            else:
                cursor.execute("DROP TRIGGER conversa_poison ON inbox_conversation")
                cursor.execute("DROP FUNCTION conversa_poison()")
        elif on:
            cursor.execute("CREATE TRIGGER conversa_poison BEFORE UPDATE ON inbox_conversation "
                           "WHEN NEW.last_message_preview LIKE 'boom%' BEGIN SELECT RAISE(ABORT, 'poisoned item'); END")
        else:
            cursor.execute("DROP TRIGGER conversa_poison")


@pytest.fixture
def poisoned(demo: dict[str, Any]) -> Any:
    _poison_previews(on=True)
    try:
        yield demo["sales_line"]
    finally:
        _poison_previews(on=False)


def test_an_item_that_still_fails_is_kept_retried_with_backoff_and_reported(poisoned: Line, settings: Any):
    line = poisoned
    batch = [{"id": "p-ok-1", "from": "+5491155550001", "text": "hola"},
             {"id": "p-boom", "from": "+5491155550002", "text": "boom"},
             {"id": "p-ok-2", "from": "+5491155550003", "text": "chau"}]
    response = Client().post(f"/webhooks/sandbox/{line.pk}/", data=json.dumps(batch), content_type="application/json")
    assert response.status_code == 200, response.content
    drain_tasks()

    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None and "1 item(s) failed" in event.error
    assert set(Message.objects.filter(line=line, direction="in").values_list("provider_message_id", flat=True)) == {
        "p-ok-1", "p-ok-2"}
    failure = WebhookItemFailure.objects.get()
    assert (failure.event_id, failure.kind, failure.position, failure.item_ref) == (event.pk, "message", 1, "p-boom")
    assert "poisoned item" in failure.error and failure.attempts == 1 and failure.resolved_at is None
    assert failure.next_attempt_at is not None  # 30 s ahead by default: not due yet
    health = Client().get("/healthz/").json()
    assert health["webhook_item_failures"] == {"retrying": 1, "given_up": 0}
    assert sweep()["webhook_item_failures"] == 0

    # Due, still poisoned: tried again, the attempt counted and the next one pushed further out.
    WebhookItemFailure.objects.update(next_attempt_at=failure.first_failed_at)
    assert sweep()["webhook_item_failures"] == 1
    assert sweep()["webhook_item_failures"] == 0  # its task is waiting: not enqueued twice
    drain_tasks()
    failure.refresh_from_db()
    assert failure.attempts == 2 and failure.resolved_at is None
    assert (failure.next_attempt_at - failure.first_failed_at).total_seconds() >= 60

    # The cause is gone: the next due retry stores the message, once.
    _poison_previews(on=False)
    try:
        WebhookItemFailure.objects.update(next_attempt_at=failure.first_failed_at)
        sweep()
        drain_tasks()
    finally:
        _poison_previews(on=True)
    failure.refresh_from_db()
    assert failure.resolved_at is not None and failure.next_attempt_at is None
    assert Message.objects.get(provider_message_id="p-boom").body == "boom"
    assert Message.objects.filter(line=line, direction="in").count() == 3
    assert Client().get("/healthz/").json()["webhook_item_failures"] == {"retrying": 0, "given_up": 0}
