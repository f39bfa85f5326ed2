"""Meta webhooks: handshake, signatures, every message type, multi-item payloads, replays,
template status updates, and routing by phone_number_id."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.adapters.base import hmac_sha256_signature
from conversa.whatsapp.models import Line, MessageTemplate, RejectedWebhook, WebhookEvent

from .conftest import META_PHONE_NUMBER_ID, META_VERIFY_TOKEN, make_campaign, meta_payload, post_meta

MEDIA = {
    "1003383421387256": (b"\xff\xd8jpeg-bytes", "image/jpeg"),
    "1789206088478213": (b"%PDF-1.7 invoice", "application/pdf"),
    "1475289773261133": (b"OggS voice", "audio/ogg"),
    "1097285191504913": (b"\x00\x00\x00\x18ftypmp4", "video/mp4"),
    "1452317588762548": (b"RIFF webp", "image/webp"),
    "2000000000000001": (b"\x89PNG multi", "image/png"),
}


def test_signature_matches_the_documented_test_vector() -> None:
    assert hmac_sha256_signature(secret="secret", body=b"test") == (
        "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914")


def test_handshake_echoes_the_challenge_with_the_right_token(meta_line: Line) -> None:
    response = APIClient().get(f"/webhooks/meta/{meta_line.pk}/", {
        "hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_handshake_refuses_a_wrong_token_or_mode(meta_line: Line, query: dict[str, str]) -> None:
    response = APIClient().get(f"/webhooks/meta/{meta_line.pk}/", query)
    assert response.status_code == 403
    assert b"1" not in response.content


@pytest.mark.parametrize("header", [
    None,  # unsigned
    "sha256=" + "0" * 64,  # wrong digest
    "sha1=abc",  # wrong scheme
    "",
])
def test_unsigned_or_badly_signed_posts_are_rejected_and_not_stored(meta_line: Line, header: str | None) -> None:
    kwargs: dict[str, Any] = {"secret": None} if header is None else {"header": header}
    response = post_meta(meta_line, meta_payload("messages_text"), **kwargs)
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_signature_of_reserialised_json_does_not_pass(meta_line: Line) -> None:
    raw = meta_payload("messages_text")
    reserialised = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert reserialised != raw
    response = post_meta(meta_line, raw, header=hmac_sha256_signature(secret="meta-app-secret", body=reserialised))
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_signature_with_another_apps_secret_is_rejected(meta_line: Line) -> None:
    response = post_meta(meta_line, meta_payload("messages_text"), secret="someone-elses-secret")
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def _receive(line: Line, name: str, **subs: str) -> Message:
    raw = meta_payload(name, **subs)
    response = post_meta(line, raw)
    assert response.status_code == 200, response.content
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None, event.error
    message_id = json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    return Message.objects.get(line=line, provider_message_id=message_id)


CASES = [
    ("messages_text", "text", "Hola, quiero saber el precio", {}),
    ("messages_image", "image", "Foto del producto", {}),
    ("messages_document", "document", "Factura", {}),
    ("messages_audio", "audio", "", {"voice": True}),
    ("messages_video", "video", "Así llegó", {}),
    ("messages_sticker", "sticker", "", {"animated": False}),
    ("messages_location", "location", "Obelisco — Av. 9 de Julio s/n, Buenos Aires",
     {"latitude": -34.6037, "longitude": -58.3816, "name": "Obelisco"}),
    ("messages_contacts", "contacts", "Julieta Fernández", {}),
    ("messages_interactive_button_reply", "interactive", "Sí", {"type": "button_reply", "reply_id": "opt_yes"}),
    ("messages_interactive_list_reply", "interactive", "Ventas",
     {"type": "list_reply", "reply_id": "sales", "description": "Hablar con un vendedor"}),
    ("messages_button", "button", "No más promociones", {"payload": "STOP_PROMOS"}),
    ("messages_reaction", "reaction", "👍", {"message_id": "wamid.OUTBOUND0001", "emoji": "👍"}),
    ("messages_unsupported", "unsupported", "Message type unknown: Message type is currently not supported.",
     {"type": "unsupported"}),
    ("messages_text_forwarded", "text", "mirá esto", {"forwarded": True}),
]


@pytest.mark.parametrize(("name", "kind", "body", "payload"), CASES, ids=[c[0] for c in CASES])
def test_every_message_type_is_stored(meta_fake: Any, meta_line: Line, name: str, kind: str, body: str,
                                      payload: dict[str, Any]) -> None:
    meta_fake.media.update(MEDIA)
    message = _receive(meta_line, name)
    assert message.kind == kind
    assert message.body == body
    assert message.direction == Message.Direction.INBOUND
    assert {k: message.payload.get(k) for k in payload} == payload
    assert message.conversation.customer_phone == "+5491155550001"
    assert message.conversation.customer_profile_name == "Ana Gómez"
    assert message.conversation.campaign == meta_line.campaign
    assert message.provider_timestamp == datetime.datetime(2023, 10, 11, 16, 53, 43, tzinfo=datetime.UTC)
    if kind in ("image", "document", "audio", "video", "sticker"):
        # Downloaded by the media task: Meta's media id resolved to bytes in our storage.
        source = json.loads(meta_payload(name))["entry"][0]["changes"][0]["value"]["messages"][0][kind]
        message.refresh_from_db()
        assert message.media_provider_id == ""
        assert message.media.read() == MEDIA[source["id"]][0]
        assert message.media_mime.startswith(source["mime_type"].split(";")[0])
    if name == "messages_document":
        assert message.media_filename == "factura-0001.pdf"
    if name == "messages_contacts":
        assert message.payload["contacts"][0]["phones"][0]["wa_id"] == "5491155550009"
    if name == "messages_unsupported":
        assert message.payload["errors"][0]["code"] == 131051


def test_context_id_links_the_reply_to_the_quoted_message(meta_fake: Any, meta_line: Line) -> None:
    first = _receive(meta_line, "messages_text")
    reply = _receive(meta_line, "messages_text_reply")
    assert reply.reply_to is None  # quotes wamid.OUTBOUND0001, which we do not have
    raw = meta_payload("messages_text_reply").replace(b"wamid.OUTBOUND0001", first.provider_message_id.encode())
    raw = raw.replace(b"wamid.REPLY0001", b"wamid.REPLY0002")
    assert post_meta(meta_line, raw).status_code == 200
    drain_tasks()
    second = Message.objects.get(provider_message_id="wamid.REPLY0002")
    assert second.reply_to == first
    assert second.conversation == first.conversation


def test_every_entry_change_message_and_status_of_one_post_is_processed(meta_fake: Any, meta_line: Line) -> None:
    meta_fake.media.update(MEDIA)
    # An outbound message the two statuses at the end of the payload refer to.
    conversation = _receive(meta_line, "messages_text").conversation
    outbound = Message.objects.create(conversation=conversation, line=meta_line, direction="out", body="hola",
                                      status=Message.Status.SENT, provider_message_id="wamid.OUTBOUND")
    response = post_meta(meta_line, meta_payload("messages_multi"))
    assert response.status_code == 200
    drain_tasks()
    ids = set(Message.objects.filter(line=meta_line, direction="in").values_list("provider_message_id", flat=True))
    assert {"wamid.MULTI0001", "wamid.MULTI0002", "wamid.MULTI0003", "wamid.MULTI0004"} <= ids
    bruno = Conversation.objects.get(line=meta_line, customer_phone="+5491155550002")
    assert bruno.customer_profile_name == "Bruno"
    assert list(bruno.messages.values_list("body", flat=True)) == ["soy Bruno"]
    assert Message.objects.get(provider_message_id="wamid.MULTI0004").media.read() == b"\x89PNG multi"
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.READ


def test_a_replayed_webhook_is_stored_and_applied_once(meta_line: Line) -> None:
    raw = meta_payload("messages_text")
    first, second = post_meta(meta_line, raw), post_meta(meta_line, raw)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == "stored" and second.json()["status"] == "duplicate"
    drain_tasks()
    assert WebhookEvent.objects.count() == 1
    assert Message.objects.filter(provider_message_id__startswith="wamid.HBgNNTQ5").count() == 1


def test_the_same_message_in_a_different_envelope_is_stored_once(meta_line: Line) -> None:
    """Meta retries do not always send identical bytes: the message id still dedups."""
    raw = meta_payload("messages_text")
    data = json.loads(raw)
    data["entry"][0]["time"] = 1697043299
    assert post_meta(meta_line, raw).status_code == 200
    assert post_meta(meta_line, json.dumps(data).encode()).json()["status"] == "stored"
    drain_tasks()
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 2
    conversation = Conversation.objects.get(line=meta_line)
    assert conversation.messages.count() == 1
    assert conversation.unread_count == 1


def test_errors_in_value_are_recorded_on_the_event(meta_line: Line) -> None:
    response = post_meta(meta_line, meta_payload("value_errors"))
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None
    assert "131000" in event.error and "unknown error" in event.error


def test_template_status_update_changes_the_template(meta_line: Line) -> None:
    template = MessageTemplate.objects.create(line=meta_line, provider_template_id="806312974732579",
                                              name="promo_julio", language="es", body="¡{{1}}, 20% off!",
                                              status=MessageTemplate.Status.APPROVED)
    post_meta(meta_line, meta_payload("template_status_update"))
    drain_tasks()
    template.refresh_from_db()
    assert template.status == MessageTemplate.Status.REJECTED
    assert template.status_reason == "INVALID_FORMAT"
    # A quality-score change is not a status change.
    post_meta(meta_line, meta_payload("template_quality_update"))
    drain_tasks()
    template.refresh_from_db()
    assert template.status == MessageTemplate.Status.REJECTED
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_messages_for_another_number_of_the_same_app_reach_that_numbers_line(meta_line: Line) -> None:
    """Meta posts every number of an app to one callback URL."""
    other = Line.objects.create(name="Meta line 2", number="+15550100011", provider=meta_line.provider,
                                campaign=make_campaign("Second number"),
                                config={"phone_number_id": "9988776655443", "waba_id": "x", "verify_token": "y"})
    raw = meta_payload("messages_text").replace(META_PHONE_NUMBER_ID.encode(), b"9988776655443")
    assert post_meta(meta_line, raw).status_code == 200
    drain_tasks()
    message = Message.objects.get(provider_message_id__startswith="wamid.HBgNNTQ5")
    assert message.line == other
    assert message.conversation.campaign.name == "Second number"


def test_unknown_phone_number_id_is_kept_on_the_receiving_line(meta_line: Line) -> None:
    raw = meta_payload("messages_text").replace(META_PHONE_NUMBER_ID.encode(), b"4444444444444")
    response = post_meta(meta_line, raw)
    drain_tasks()
    assert Message.objects.get(provider_message_id__startswith="wamid.HBgNNTQ5").line == meta_line
    assert "4444444444444" in WebhookEvent.objects.get(pk=response.json()["event"]).error


def test_a_payload_without_an_entry_list_is_refused_and_sampled_not_stored(meta_line: Line) -> None:
    # Stored, it would be an event that does nothing on every retry (decision #25): 400 naming the
    # field, and a bounded sample for admins instead (decision #36).
    response = post_meta(meta_line, b'{"object": "whatsapp_business_account", "entry": "nope"}')
    assert response.status_code == 400
    assert response.json()["field"] == "entry"
    assert not WebhookEvent.objects.exists()
    sample = RejectedWebhook.objects.get(line=meta_line)
    assert sample.status_code == 400 and sample.verified and b'"nope"' in bytes(sample.body_sample)
