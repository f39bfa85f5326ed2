"""Issue 13, inbound: every real payload the adapters receive is understood. Each fixture (built
from the vendor's documented format) is read by the adapter here; the product side of the same
fixtures, posted through the webhook endpoint, is in test_payload_product.py."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import ParsedWebhook
from conversa.whatsapp.models import Line
from fakes.server import fixture

from .conftest import gupshup_payload, meta_payload

TEXT_ID = "wamid.HBgNNTQ5MTE1NTU1MDAwMRUCABIYFjNFQjBDMEE2RjQ5QkQ2MDJGRkE0AA=="


def _meta(line: Line, name: str) -> ParsedWebhook:
    return get_adapter(line).read(meta_payload(name))


def _gupshup(line: Line, name: str, **subs: str) -> ParsedWebhook:
    return get_adapter(line).read(gupshup_payload(name, **subs))


# ------------------------------------------------------------------------------------- Meta
def test_customers_known_only_by_user_id_keep_their_id_name_and_username(meta_line: Line) -> None:
    parsed = _meta(meta_line, "messages_user_id_only")
    assert parsed.rejected == []
    lucia, tomas = parsed.messages
    assert (lucia.from_phone, lucia.from_user_id, lucia.profile_name, lucia.username) == (
        "", "AR.1502576394655843", "Lucía", "@lucia.compras")
    assert (tomas.from_phone, tomas.from_user_id, tomas.username) == ("", "AR.1809937462510098", "@tomas_r")
    assert (lucia.body, tomas.body) == ("Hola, soy Lucía", "Y yo Tomás")


def test_a_phone_customer_also_carries_the_user_id(meta_line: Line) -> None:
    [message] = _meta(meta_line, "messages_text_with_user_id").messages
    assert (message.from_phone, message.from_user_id, message.profile_name) == (
        "5491155550001", "AR.1502576394655843", "Ana Gómez")


@pytest.mark.parametrize(("name", "event", "new_phone", "new_user_id"), [
    ("messages_system_number_changed", "number_changed", "5491155550077", "AR.2203345566778899"),
    ("messages_system_identity_changed", "identity_changed", "", ""),
    ("messages_system_user_id_changed", "user_id_changed", "", "AR.3304455667788990"),
])
def test_system_messages_are_customer_events_not_blank_messages(meta_line: Line, name: str, event: str,
                                                                  new_phone: str, new_user_id: str) -> None:
    parsed = _meta(meta_line, name)
    assert parsed.messages == []
    [system] = parsed.customer_events
    raw = json.loads(meta_payload(name))["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (system.event, system.new_phone, system.new_user_id) == (event, new_phone, new_user_id)
    assert system.body == raw["system"]["body"]
    assert system.provider_message_id == raw["id"]
    assert system.line_ref == "1122334455667"


def test_edits_and_deletions_name_the_original_message(meta_line: Line) -> None:
    [edit] = _meta(meta_line, "messages_edit").changes
    assert (edit.action, edit.original_id, edit.body, edit.from_phone, edit.echo) == (
        "edit", TEXT_ID, "Hola, quiero saber el precio del modelo B", "5491155550001", False)
    [revoke] = _meta(meta_line, "messages_revoke").changes
    assert (revoke.action, revoke.original_id, revoke.body) == ("delete", TEXT_ID, "")
    assert _meta(meta_line, "messages_edit").messages == []


def test_an_order_lists_its_items_and_total(meta_line: Line) -> None:
    [order] = _meta(meta_line, "messages_order").messages
    assert order.kind == "order"
    assert order.body == ("Para retirar el sábado\n2 x SKU-MATE-01 — 1500.5 ARS\n1 x SKU-BOMBILLA — 800 ARS\n"
                          "= 3801.00 ARS")
    assert order.payload["catalog_id"] == "1180926479474935"
    assert order.payload["total"] == "3801.00"
    assert [i["quantity"] for i in order.payload["items"]] == [2, 1]


def test_call_permission_reply_shows_the_decision(meta_line: Line) -> None:
    [reply] = _meta(meta_line, "messages_interactive_call_permission_reply").messages
    assert reply.body == "Call permission: accepted"
    assert reply.payload["response"] == "accept"
    assert reply.payload["expires_at"].startswith("2023-10-18")


def test_an_interactive_reply_with_an_error_shows_the_error(meta_line: Line) -> None:
    [reply] = _meta(meta_line, "messages_interactive_error").messages
    assert reply.body == "Something went wrong: Message failed to send due to an unknown error."
    assert reply.payload["errors"][0]["code"] == 131000


def test_business_app_echoes_are_outbound_to_the_customer(meta_line: Line) -> None:
    parsed = _meta(meta_line, "smb_message_echoes")
    assert parsed.messages == []
    [echo] = parsed.echoes
    assert (echo.from_phone, echo.body, echo.provider_message_id, echo.line_ref) == (
        "5491155550001", "Hola Ana, te escribo desde el celular de la tienda", "wamid.ECHO0001", "1122334455667")
    [deleted] = _meta(meta_line, "smb_message_echoes_revoke").changes
    assert (deleted.action, deleted.original_id, deleted.echo, deleted.from_phone) == (
        "delete", "wamid.ECHO0001", True, "5491155550001")


def test_played_status_is_passed_on(meta_line: Line) -> None:
    [played] = _meta(meta_line, "statuses_played").statuses
    assert (played.provider_message_id, played.status) == ("wamid.OUTBOUND", "played")


def test_template_rejection_info_and_category_updates(meta_line: Line) -> None:
    [template] = _meta(meta_line, "template_status_update_rejection_info").templates
    assert template.status == "rejected"
    assert template.reason == ("INVALID_FORMAT: The template has a variable at the start of the body.; "
                               "Move {{1}} after some fixed text.")
    [category] = _meta(meta_line, "template_category_update").template_categories
    assert (category.provider_template_id, category.name, category.category, category.previous_category) == (
        "806312974732579", "promo_julio", "MARKETING", "UTILITY")


def test_messages_without_an_id_get_distinct_stable_ids(meta_line: Line) -> None:
    first, second = _meta(meta_line, "messages_without_id").messages
    assert first.provider_message_id.startswith("derived:") and first.derived_id
    assert first.provider_message_id != second.provider_message_id
    again = _meta(meta_line, "messages_without_id").messages
    assert [m.provider_message_id for m in again] == [first.provider_message_id, second.provider_message_id]
    assert any("without an id" in str(e) for e in _meta(meta_line, "messages_without_id").errors)


# ------------------------------------------------------------------------------------ GupShup
def test_gupshup_paused_template_reason_is_the_description(gupshup_line: Line) -> None:
    [template] = _gupshup(gupshup_line, "template_event_paused").templates
    assert template.status == "paused"
    assert template.reason.startswith("Your template has been paused for 3 hours")
    [rejected] = _gupshup(gupshup_line, "template_event").templates
    assert rejected.reason == "INVALID_FORMAT"


def test_gupshup_mismatch_is_a_line_notice(gupshup_line: Line) -> None:
    parsed = _gupshup(gupshup_line, "account_event_mismatch")
    [notice] = parsed.line_notices
    assert "mismatch" in notice.problem and "migrated to another WhatsApp Business Account" in notice.problem


def test_gupshup_v3_callbacks_are_read_like_meta(gupshup_line: Line) -> None:
    [message] = _gupshup(gupshup_line, "v3_message_text").messages
    assert (message.provider_message_id, message.from_phone, message.body, message.profile_name) == (
        "wamid.GSV3TEXT0001", "5491155550001", "Hola por v3", "Ana")
    parsed = _gupshup(gupshup_line, "v3_status_enqueued", gs_id="gs-1")
    assert parsed.statuses == []
    assert [(a.provider_message_id, a.alias) for a in parsed.id_aliases] == [("gs-1", "wamid.GSV3OUT0001")]
    [read] = _gupshup(gupshup_line, "v3_status_read", gs_id="gs-1").statuses
    assert (read.provider_message_id, read.alternate_ids, read.status) == ("gs-1", ["wamid.GSV3OUT0001"], "read")
    assert read.timestamp == datetime.datetime.fromtimestamp(1710941399, tz=datetime.UTC)
    platform = _gupshup(gupshup_line, "v3_platform_event")
    assert (platform.messages, platform.statuses, platform.errors) == ([], [], [])


def test_gupshup_enqueued_keeps_the_whatsapp_id_for_late_receipts(gupshup_line: Line) -> None:
    parsed = _gupshup(gupshup_line, "event_enqueued", gs_id="gs-2")
    assert [(a.provider_message_id, a.alias) for a in parsed.id_aliases] == [("gs-2", "gBEGVIVsVZQnAgkSz1ZIGJ8Lw1I")]
    [late] = _gupshup(gupshup_line, "event_read_late").statuses
    assert (late.provider_message_id, late.status) == ("gBEGVIVsVZQnAgkSz1ZIGJ8Lw1I", "read")


def test_gupshup_sender_user_id(gupshup_line: Line) -> None:
    [message] = _gupshup(gupshup_line, "message_text_user_id").messages
    assert (message.from_phone, message.from_user_id) == ("5491155550001", "AR.1502576394655843")


def test_every_meta_message_type_and_status_has_a_fixture() -> None:
    """The proof the issue asks for: at least one payload per Meta messages[].type and per status."""
    from fakes.server import FIXTURES

    types: set[str] = set()
    statuses: set[str] = set()
    for path in (FIXTURES / "meta").glob("*.json"):
        data: Any = fixture("meta", path.stem)
        for entry in data.get("entry", []) if isinstance(data, dict) else []:
            for change in entry.get("changes", []):
                value = change.get("value", {})
                types |= {m.get("type") for m in value.get("messages", []) + value.get("message_echoes", [])}
                statuses |= {s.get("status") for s in value.get("statuses", [])}
    assert {"text", "image", "document", "audio", "video", "sticker", "location", "contacts", "interactive",
            "button", "reaction", "order", "system", "edit", "revoke", "unsupported"} <= types
    assert {"sent", "delivered", "read", "failed", "played"} <= statuses
