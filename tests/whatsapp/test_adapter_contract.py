"""What every adapter hands the rest of Conversa, whatever the vendor: the chosen row of a list or
button in `reply_id`, a closed customer window as the reason `window_closed` (with the vendor's own
code kept), lines named by the payload left to the caller (parse touches no database), its own
config fields, and one HMAC helper."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversa.whatsapp.adapters import adapter_classes, get_adapter
from conversa.whatsapp.adapters.base import WINDOW_CLOSED, SendError, hmac_sha256_signature
from conversa.whatsapp.models import Line
from fakes.meta import MetaFake
from fakes.server import Reply, fixture

from .conftest import META_PHONE_NUMBER_ID, gupshup_payload, meta_payload
from .test_meta_sending import SEND_PATH


def _only_message(line: Line, body: bytes) -> Any:
    parsed = get_adapter(line).read(body)
    [inbound] = parsed.messages
    return inbound


def test_meta_list_and_button_replies_carry_the_chosen_id(meta_line: Line) -> None:
    assert _only_message(meta_line, meta_payload("messages_interactive_list_reply")).reply_id == "sales"
    assert _only_message(meta_line, meta_payload("messages_interactive_button_reply")).reply_id == "opt_yes"
    assert _only_message(meta_line, meta_payload("messages_button")).reply_id == "STOP_PROMOS"
    assert _only_message(meta_line, meta_payload("messages_text")).reply_id == ""


def test_gupshup_list_reply_id_is_the_postback_we_sent_not_gupshups_row_number(gupshup_line: Line) -> None:
    reply = fixture("gupshup", "message_list_reply")
    reply["payload"]["payload"].update(id="1", postbackText="menu-7-option-9")
    inbound = _only_message(gupshup_line, json.dumps(reply).encode())
    assert (inbound.kind, inbound.reply_id, inbound.payload["reply_id"]) == (
        "interactive", "menu-7-option-9", "menu-7-option-9")
    assert "postbackText" not in inbound.payload  # the vendor's field name stays in the adapter
    assert _only_message(gupshup_line, gupshup_payload("message_button_reply")).reply_id == "opt_yes"
    assert _only_message(gupshup_line, gupshup_payload("message_quick_reply")).reply_id == "STOP_PROMOS"


def test_sandbox_interactive_reply_carries_the_chosen_id(demo: dict[str, Any]) -> None:
    body = json.dumps({"id": "sb-1", "from": "+5491155550001", "type": "interactive", "reply_id": "menu-1-option-2",
                       "text": "Support"}).encode()
    inbound = _only_message(demo["sales_line"], body)
    assert (inbound.kind, inbound.reply_id, inbound.body) == ("interactive", "menu-1-option-2", "Support")


def test_a_closed_window_is_reported_the_same_way_by_every_adapter(meta_line: Line, gupshup_line: Line,
                                                                   demo: dict[str, Any]) -> None:
    [meta] = get_adapter(meta_line).read(meta_payload("statuses_failed_131047")).statuses
    [gupshup] = get_adapter(gupshup_line).read(gupshup_payload("event_failed_131047")).statuses
    sandbox_body = json.dumps({"status": {"id": "sandbox-1", "status": "failed", "error_code": "window_closed",
                                          "error_title": "24 h passed"}}).encode()
    [sandbox] = get_adapter(demo["sales_line"]).read(sandbox_body).statuses
    assert [s.error_reason for s in (meta, gupshup, sandbox)] == [WINDOW_CLOSED] * 3
    # The vendor's own code stays for whoever reads the message (admins, support).
    assert (meta.error_code, gupshup.error_code) == ("131047", "131047")
    [other] = get_adapter(gupshup_line).read(gupshup_payload("event_failed")).statuses
    assert (other.error_code, other.error_reason) == ("1002", "")


def test_a_send_refused_for_a_closed_window_says_so(meta_fake: MetaFake, meta_line: Line) -> None:
    meta_fake.script("POST", SEND_PATH, Reply(400, {"error": {
        "message": "(#131047) Re-engagement message", "code": 131047,
        "error_data": {"details": "More than 24 hours have passed since the recipient last replied."}}}))
    with pytest.raises(SendError) as refused:
        get_adapter(meta_line).send_text(to="5491155550001", text="hola")
    assert (refused.value.code, refused.value.reason, refused.value.retryable) == ("131047", WINDOW_CLOSED, False)


def test_parse_is_pure_the_caller_routes_other_numbers(meta_line: Line) -> None:
    """Meta names the number each change is for; the adapter reports it, the caller finds the line."""
    adapter = get_adapter(meta_line)
    body = meta_payload("messages_text").replace(META_PHONE_NUMBER_ID.encode(), b"9988776655443")
    with CaptureQueriesContext(connection) as queries:
        first = adapter.read(body)
        second = adapter.read(meta_payload("messages_text"))
    assert len(queries) == 0
    assert [m.line_ref for m in first.messages] == ["9988776655443"]
    assert [m.line_ref for m in second.messages] == [META_PHONE_NUMBER_ID]
    assert not first.errors  # an unknown number is the caller's finding, not the parser's
    assert adapter.line_ref_field == "phone_number_id"


def test_every_adapter_declares_its_config_fields() -> None:
    classes = adapter_classes()
    assert set(classes) == {"meta", "gupshup", "sandbox"}
    required = {kind: sorted(f.key for f in (*cls.provider_fields, *cls.line_fields) if f.required)
                for kind, cls in classes.items()}
    assert required == {"meta": ["access_token", "app_secret", "phone_number_id"],
                        "gupshup": ["api_key", "app_name"], "sandbox": []}
    secrets = {f.key for cls in classes.values() for f in (*cls.provider_fields, *cls.line_fields) if f.secret}
    assert secrets == {"access_token", "app_secret", "verify_token", "api_key", "app_token"}
    assert classes["meta"].line_ref_field in {f.key for f in classes["meta"].line_fields}


def test_one_hmac_helper_matches_the_documented_vector() -> None:
    # Meta's documented example (also what the sandbox's X-Conversa-Signature uses).
    assert hmac_sha256_signature(secret="secret", body=b"test") == (
        "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914")
