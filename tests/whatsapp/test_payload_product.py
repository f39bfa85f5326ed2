"""Issue 13, in the product: the fixtures of test_payload_coverage.py posted, signed, through the
real webhook endpoints and processed by the real worker; what agents then see."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line, MessageTemplate, WebhookEvent

from .conftest import gupshup_payload, meta_payload, post_gupshup, post_meta

TEXT_ID = "wamid.HBgNNTQ5MTE1NTU1MDAwMRUCABIYFjNFQjBDMEE2RjQ5QkQ2MDJGRkE0AA=="


def _meta(line: Line, name: str, raw: bytes | None = None) -> WebhookEvent:
    response = post_meta(line, raw if raw is not None else meta_payload(name))
    assert response.status_code == 200, response.content
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None and "item(s) failed" not in event.error, event.error
    return event


def _gupshup(line: Line, name: str, **subs: str) -> WebhookEvent:
    response = post_gupshup(line, gupshup_payload(name, **subs))
    assert response.status_code == 200, response.content
    drain_tasks()
    event = WebhookEvent.objects.get(pk=response.json()["event"])
    assert event.processed_at is not None, event.error
    return event


def _thread_html(conversation: Conversation) -> str:
    client = Client()
    client.force_login(get_user_model().objects.get(username="agent1"))
    response = client.get(f"/console/c/{conversation.pk}/messages/")
    assert response.status_code == 200
    return response.content.decode()


def _outbound(conversation: Conversation, provider_id: str, status: str = Message.Status.SENT) -> Message:
    return Message.objects.create(conversation=conversation, line=conversation.line, direction="out", body="hola",
                                  status=status, provider_message_id=provider_id)


# ---------------------------------------------------------------------- customers by user id
def test_customers_without_a_phone_get_one_conversation_each(meta_line: Line) -> None:
    _meta(meta_line, "messages_user_id_only")
    lucia = Conversation.objects.get(line=meta_line, customer_user_id="AR.1502576394655843")
    tomas = Conversation.objects.get(line=meta_line, customer_user_id="AR.1809937462510098")
    assert (lucia.customer_phone, lucia.customer_label, lucia.customer_username) == ("", "Lucía", "@lucia.compras")
    assert (tomas.customer_phone, tomas.customer_label) == ("", "@tomas_r")
    raw = meta_payload("messages_user_id_only").replace(b"wamid.USERID0001", b"wamid.USERID0003").replace(
        b"wamid.USERID0002", b"wamid.USERID0004")
    _meta(meta_line, "", raw)
    assert Conversation.objects.filter(line=meta_line).count() == 2
    assert lucia.messages.count() == 2 and tomas.messages.count() == 2
    assert "Lucía" in _thread_html(lucia) or lucia.messages.filter(body="Hola, soy Lucía").exists()


def test_a_phone_customer_keeps_the_user_id_too(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, "messages_text_with_user_id")
    conversation = Conversation.objects.get(line=meta_line)
    assert (conversation.customer_phone, conversation.customer_user_id) == ("+5491155550001", "AR.1502576394655843")
    assert conversation.messages.count() == 2


# ------------------------------------------------------------------------------ system events
def test_number_change_is_a_system_line_and_moves_the_conversation(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, "messages_system_number_changed")
    conversation = Conversation.objects.get(line=meta_line)
    system = conversation.messages.get(kind=Message.Kind.SYSTEM)
    assert system.body == "User Ana Gómez changed from 5491155550001 to 5491155550077"
    assert (conversation.customer_phone, conversation.customer_user_id) == ("+5491155550077", "AR.2203345566778899")
    assert "msg-system" in _thread_html(conversation)
    # The customer writes from the new number: the same conversation.
    raw = meta_payload("messages_text").replace(b'"5491155550001"', b'"5491155550077"').replace(
        TEXT_ID.encode(), b"wamid.NEWNUMBER0001")
    _meta(meta_line, "", raw)
    assert Conversation.objects.filter(line=meta_line).count() == 1
    assert conversation.messages.filter(provider_message_id="wamid.NEWNUMBER0001").exists()
    # Replayed: one system line.
    _meta(meta_line, "", meta_payload("messages_system_number_changed") + b" ")
    assert conversation.messages.filter(kind=Message.Kind.SYSTEM).count() == 1


@pytest.mark.parametrize("name", ["messages_system_identity_changed"])
def test_identity_change_is_a_system_line(meta_line: Line, name: str) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, name)
    conversation = Conversation.objects.get(line=meta_line)
    assert list(conversation.messages.values_list("kind", "body")) == [
        ("text", "Hola, quiero saber el precio"), ("system", "User's security code changed")]
    assert conversation.customer_phone == "+5491155550001"


# ------------------------------------------------------------------------- edits, deletions
def test_an_edit_updates_the_original_and_keeps_its_history(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, "messages_edit")
    conversation = Conversation.objects.get(line=meta_line)
    [message] = conversation.messages.all()  # no new blank message
    assert message.body == "Hola, quiero saber el precio del modelo B"
    assert message.edited_at is not None
    assert [h["body"] for h in message.payload["history"]] == ["Hola, quiero saber el precio"]
    _meta(meta_line, "", meta_payload("messages_edit") + b"\n")  # replayed in another envelope
    message.refresh_from_db()
    assert len(message.payload["history"]) == 1
    assert 'data-testid="edited"' in _thread_html(conversation)


def test_a_deletion_marks_the_message_deleted(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, "messages_revoke")
    conversation = Conversation.objects.get(line=meta_line)
    [message] = conversation.messages.all()
    assert message.deleted_at is not None and message.body == ""
    html = _thread_html(conversation)
    assert "This message was deleted" in html and "quiero saber el precio" not in html


# ------------------------------------------------------------------- orders, calls, errors
@pytest.mark.parametrize(("name", "kind", "body"), [
    ("messages_order", "order", "Para retirar el sábado\n2 x SKU-MATE-01 — 1500.5 ARS\n1 x SKU-BOMBILLA — 800 ARS\n"
                                "= 3801.00 ARS"),
    ("messages_interactive_call_permission_reply", "interactive", "Call permission: accepted"),
    ("messages_interactive_error", "interactive",
     "Something went wrong: Message failed to send due to an unknown error."),
])
def test_orders_call_permissions_and_errors_are_readable(meta_line: Line, name: str, kind: str, body: str) -> None:
    _meta(meta_line, name)
    message = Message.objects.get(line=meta_line)
    assert (message.kind, message.body) == (kind, body)


# ----------------------------------------------------------------------- business-app echoes
def test_messages_sent_from_the_whatsapp_app_are_outbound(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    _meta(meta_line, "smb_message_echoes")
    conversation = Conversation.objects.get(line=meta_line)
    echo = conversation.messages.get(provider_message_id="wamid.ECHO0001")
    assert (echo.direction, echo.status, echo.sender, echo.payload["origin"]) == (
        "out", Message.Status.SENT, None, "business_app")
    assert conversation.unread_count == 1  # ours does not count as unread
    assert "Sent from the WhatsApp app" in _thread_html(conversation)
    _meta(meta_line, "smb_message_echoes_revoke")
    echo.refresh_from_db()
    assert echo.deleted_at is not None


def test_an_echo_to_a_new_customer_opens_a_conversation(meta_line: Line) -> None:
    _meta(meta_line, "smb_message_echoes")
    conversation = Conversation.objects.get(line=meta_line)
    assert conversation.customer_phone == "+5491155550001"
    assert list(conversation.messages.values_list("direction", flat=True)) == ["out"]


# ----------------------------------------------------------------------------- statuses
def test_played_moves_a_read_voice_note_forward(meta_line: Line) -> None:
    _meta(meta_line, "messages_text")
    outbound = _outbound(Conversation.objects.get(line=meta_line), "wamid.OUTBOUND", status=Message.Status.READ)
    _meta(meta_line, "statuses_played")
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.PLAYED
    _meta(meta_line, "statuses_read")  # late: no step back
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.PLAYED


# ----------------------------------------------------------------------------- templates
def test_template_rejection_reason_and_category(meta_line: Line) -> None:
    template = MessageTemplate.objects.create(line=meta_line, provider_template_id="806312974732579",
                                              name="promo_julio", language="es", body="Hola {{1}}",
                                              category="UTILITY")
    _meta(meta_line, "template_status_update_rejection_info")
    template.refresh_from_db()
    assert template.status == "rejected"
    assert "Move {{1}} after some fixed text." in template.status_reason
    _meta(meta_line, "template_category_update")
    template.refresh_from_db()
    assert template.category == "MARKETING"


def test_id_less_messages_are_two_messages_stored_once(meta_line: Line) -> None:
    _meta(meta_line, "messages_without_id")
    _meta(meta_line, "", meta_payload("messages_without_id") + b" ")
    conversation = Conversation.objects.get(line=meta_line)
    assert list(conversation.messages.values_list("body", flat=True)) == ["primero sin id", "segundo sin id"]


# ------------------------------------------------------------------------------- GupShup
def test_gupshup_paused_template_shows_the_pause_reason(gupshup_line: Line) -> None:
    template = MessageTemplate.objects.create(line=gupshup_line, name="promo_julio", language="es", body="Hola",
                                              provider_template_id="4dacef15-6c04-12db-b393-6190ac567eff")
    _gupshup(gupshup_line, "template_event_paused")
    template.refresh_from_db()
    assert template.status == "paused" and template.status_reason.startswith("Your template has been paused")


def test_gupshup_mismatch_flags_the_line(gupshup_line: Line) -> None:
    _gupshup(gupshup_line, "account_event_mismatch")
    gupshup_line.refresh_from_db()
    assert "migrated to another WhatsApp Business Account" in gupshup_line.health_error


def test_gupshup_v3_message_and_statuses(gupshup_line: Line) -> None:
    _gupshup(gupshup_line, "v3_message_text")
    conversation = Conversation.objects.get(line=gupshup_line)
    assert conversation.messages.get().body == "Hola por v3"
    outbound = _outbound(conversation, "gs-v3-1")
    _gupshup(gupshup_line, "v3_status_enqueued", gs_id="gs-v3-1")
    _gupshup(gupshup_line, "v3_status_read", gs_id="gs-v3-1")
    outbound.refresh_from_db()
    assert (outbound.status, outbound.provider_alias_id) == (Message.Status.READ, "wamid.GSV3OUT0001")
    _gupshup(gupshup_line, "v3_platform_event")  # nothing to apply, no error


def test_gupshup_late_receipt_without_gsid_finds_its_message(gupshup_line: Line) -> None:
    _gupshup(gupshup_line, "message_text")
    outbound = _outbound(Conversation.objects.get(line=gupshup_line), "gs-late-1")
    _gupshup(gupshup_line, "event_enqueued", gs_id="gs-late-1")
    _gupshup(gupshup_line, "event_read_late")  # a week later: WhatsApp's id only
    outbound.refresh_from_db()
    assert outbound.status == Message.Status.READ


def test_gupshup_user_id_is_kept(gupshup_line: Line) -> None:
    _gupshup(gupshup_line, "message_text_user_id")
    conversation = Conversation.objects.get(line=gupshup_line)
    assert (conversation.customer_phone, conversation.customer_user_id) == ("+5491155550001", "AR.1502576394655843")
