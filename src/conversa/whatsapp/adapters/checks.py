"""The shared safety rules for what adapters parse (`checked`): every item made safe to store
whatever the vendor sent — text any column takes, identifiers and senders that fit, display
values cut, and only items missing what identifies them rejected."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from conversa.whatsapp.adapters.base import (
    CustomerEvent,
    InboundMessage,
    LineNotice,
    MessageChange,
    ParsedWebhook,
    StatusUpdate,
)

# Longest values our columns hold (inbox.Message, whatsapp.PendingStatus, inbox.Conversation).
MAX_ID = 200
MAX_PHONE_DIGITS = 15  # E.164
MAX_NAME = 200
MAX_FILENAME = 255
MAX_MIME = 120
MAX_STATUS = 20
MAX_ERROR_CODE = 40
MAX_ERROR_TITLE = 2000


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters; a cut shows as an ellipsis (people read these)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_filename(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        return _cut(name, limit)
    return _cut(stem, limit - len(ext) - 1) + "." + ext


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text any database column can hold: NUL removed (PostgreSQL refuses it in text and jsonb,
    SQLite takes it, so it passes tests there and fails in production), lone surrogates (a JSON
    "\\ud83d" without its pair, which no UTF-8 encoder accepts) replaced with U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():  # most values of a burst: no surrogate possible, no regex run
        return text
    # A JSON reader already joins valid pairs, so any surrogate left stands alone.
    return _SURROGATE.sub("\ufffd", text)


def clean_value(value: Any) -> Any:
    """`clean_text` on every string (keys too) of a JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value


def fitted_id(value: str) -> str:
    """An identifier our columns hold: as is up to MAX_ID characters, else `sha256:` and the hex
    digest of the whole value. Deterministic, so a replay, a status or a reply naming the same long
    id still finds the same message, and two different ids stay two (cutting would merge them)."""
    value = clean_text(value)
    if len(value) <= MAX_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def fitted_phone(value: str) -> str:
    """A sender our columns hold. Up to 15 digits (E.164): the digits as sent (formatting dropped
    when the text is long). More is no phone anyone can answer, but the message is still the
    customer's: its first 11 digits and 8 derived from a hash of all of them (19, the column's
    room), so every message of that sender lands in the same conversation."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= MAX_PHONE_DIGITS:
        return clean_text(value) if len(value) <= 40 else digits
    derived = int(hashlib.sha256(digits.encode()).hexdigest(), 16) % 10**8
    return f"{digits[:11]}{derived:08d}"


def checked(parsed: ParsedWebhook) -> ParsedWebhook:
    """Every item an adapter produced, made safe to store, so one odd value never costs the
    customer's message: text cleaned of what no column takes (`clean_text`), identifiers over their
    column hashed (`fitted_id`), senders over 15 digits replaced by a stand-in (`fitted_phone`),
    display values (names, file names) cut with an ellipsis; values no column can hold and nothing
    needs (a media type) are dropped. Only items missing what identifies them (an id, a sender with
    a digit, a status) are moved to `rejected`. Vendor-neutral, so every provider gets the same rules."""
    parsed.messages = [m for m in parsed.messages if _checked_message(m, parsed)]
    parsed.echoes = [m for m in parsed.echoes if _checked_message(m, parsed)]
    statuses: list[StatusUpdate] = []
    for update in parsed.statuses:
        update.status = clean_text(update.status)
        if not update.provider_message_id or not update.status or len(update.status) > MAX_STATUS:
            field_name = "status.status" if update.provider_message_id else "status.id"
            parsed.rejected.append({"field": field_name, "error": f"{field_name} is missing"
                                    if field_name == "status.id" else "status.status is missing or unknown"})
            continue
        update.provider_message_id = fitted_id(update.provider_message_id)
        update.alternate_ids = [fitted_id(i) for i in update.alternate_ids if i]
        update.line_ref = clean_text(update.line_ref)
        # Echoed values are the provider's (or anyone's, on an open sandbox): cleaned like the rest.
        update.reference = clean_text(update.reference)[:MAX_ID]
        update.recipient = clean_text(update.recipient)[:MAX_ID]
        update.error_code = clean_text(update.error_code)[:MAX_ERROR_CODE]
        update.error_title = _cut(clean_text(update.error_title), MAX_ERROR_TITLE)
        statuses.append(update)
    parsed.statuses = statuses
    parsed.changes = [c for c in parsed.changes if _checked_change(c, parsed)]
    parsed.customer_events = [e for e in parsed.customer_events if _checked_customer_event(e, parsed)]
    parsed.id_aliases = [dataclasses.replace(a, provider_message_id=fitted_id(a.provider_message_id),
                                             alias=fitted_id(a.alias), line_ref=clean_text(a.line_ref))
                         for a in parsed.id_aliases if a.provider_message_id and a.alias]
    parsed.template_categories = [dataclasses.replace(c, **{f.name: clean_text(str(getattr(c, f.name)))[:MAX_NAME]
                                                            for f in dataclasses.fields(c)})
                                  for c in parsed.template_categories]
    parsed.line_notices = [LineNotice(problem=_cut(clean_text(n.problem), MAX_ERROR_TITLE))
                           for n in parsed.line_notices]
    parsed.templates = [dataclasses.replace(t, **{f.name: clean_value(getattr(t, f.name))
                                                  for f in dataclasses.fields(t)}) for t in parsed.templates]
    parsed.errors.extend({"rejected": r["field"], "error": r["error"]} for r in parsed.rejected)
    return parsed


def _has_sender(*, phone: str, user_id: str) -> bool:
    return any(ch.isdigit() for ch in phone) or bool(user_id.strip())


def derived_message_id(inbound: InboundMessage) -> str:
    """A stable id for a message the provider sent without one: the same message redelivered gets
    the same id (stored once), two different id-less messages get two."""
    content = json.dumps([inbound.from_phone, inbound.from_user_id,
                          inbound.timestamp.isoformat() if inbound.timestamp else "", inbound.kind,
                          inbound.body, inbound.media_id, inbound.payload], sort_keys=True, default=str)
    return "derived:" + hashlib.sha256(content.encode()).hexdigest()


def _checked_message(inbound: InboundMessage, parsed: ParsedWebhook) -> bool:
    """One message (or echo) made safe to store, per `checked`; False when it must be dropped."""
    inbound.from_user_id = clean_text(inbound.from_user_id).strip()
    if len(inbound.from_user_id) > MAX_ID:
        inbound.from_user_id = fitted_id(inbound.from_user_id)
    if not _has_sender(phone=inbound.from_phone, user_id=inbound.from_user_id):
        parsed.rejected.append({"field": "from", "error": "from is missing or not a phone number"
                                if inbound.from_phone else "from is missing"})
        return False
    if not inbound.from_phone.strip() or not any(ch.isdigit() for ch in inbound.from_phone):
        inbound.from_phone = ""  # known by user id only
    else:
        inbound.from_phone = fitted_phone(inbound.from_phone)
    inbound.body = clean_text(inbound.body)
    inbound.payload = clean_value(inbound.payload)
    if not inbound.provider_message_id:
        # Never lose the customer's message, never merge two: an id from what it says and when.
        inbound.provider_message_id = derived_message_id(inbound)
        inbound.derived_id = True
        parsed.errors.append({"message": inbound.provider_message_id,
                              "error": "message without an id: stored under an id derived from its content"})
    inbound.provider_message_id = fitted_id(inbound.provider_message_id)
    inbound.kind, inbound.line_ref, inbound.reply_id = (
        clean_text(inbound.kind), clean_text(inbound.line_ref), clean_text(inbound.reply_id))
    inbound.profile_name = _cut(clean_text(inbound.profile_name), MAX_NAME)
    inbound.username = _cut(clean_text(inbound.username), MAX_NAME)
    inbound.media_filename = _cut_filename(clean_text(inbound.media_filename), MAX_FILENAME)
    inbound.media_mime = clean_text(inbound.media_mime)
    if len(inbound.media_mime) > MAX_MIME:
        inbound.media_mime = ""  # the stored file's type is sniffed anyway
    if inbound.reply_to_provider_id:
        inbound.reply_to_provider_id = fitted_id(inbound.reply_to_provider_id)
    inbound.media_id = clean_text(inbound.media_id)
    if len(inbound.media_id) > MAX_ID:
        parsed.errors.append({"message": inbound.provider_message_id,
                              "error": f"media reference longer than {MAX_ID} characters: not fetched"})
        inbound.media_id = ""
    return True


def _checked_change(change: MessageChange, parsed: ParsedWebhook) -> bool:
    if not change.original_id:
        parsed.rejected.append({"field": f"{change.action}.original_message_id",
                                "error": "the changed message's id is missing"})
        return False
    change.original_id = fitted_id(change.original_id)
    change.provider_message_id = fitted_id(change.provider_message_id or f"{change.action}:{change.original_id}")
    change.from_user_id = clean_text(change.from_user_id)[:MAX_ID]
    change.from_phone = fitted_phone(change.from_phone) if any(ch.isdigit() for ch in change.from_phone) else ""
    change.body, change.line_ref, change.action = (clean_text(change.body), clean_text(change.line_ref),
                                                   clean_text(change.action))
    return True


def _checked_customer_event(event: CustomerEvent, parsed: ParsedWebhook) -> bool:
    if not _has_sender(phone=event.from_phone, user_id=event.from_user_id):
        parsed.rejected.append({"field": "system.from", "error": "the customer of a system message is missing"})
        return False
    event.from_phone = fitted_phone(event.from_phone) if any(ch.isdigit() for ch in event.from_phone) else ""
    event.new_phone = fitted_phone(event.new_phone) if any(ch.isdigit() for ch in event.new_phone) else ""
    event.from_user_id = clean_text(event.from_user_id)[:MAX_ID]
    event.new_user_id = clean_text(event.new_user_id)[:MAX_ID]
    event.body, event.event = clean_text(event.body), clean_text(event.event)
    event.line_ref = clean_text(event.line_ref)
    if not event.provider_message_id:
        content = json.dumps([event.from_phone, event.from_user_id, event.event, event.body,
                              event.timestamp.isoformat() if event.timestamp else ""])
        event.provider_message_id = "derived:" + hashlib.sha256(content.encode()).hexdigest()
    event.provider_message_id = fitted_id(event.provider_message_id)
    return True
