"""The WhatsApp Cloud API webhook format, read into our vendor-neutral items: Meta's own callbacks
and GupShup's v3 callbacks, which relay the same shape. Every entry, change, message and status,
in payload order; unknown fields optional, malformed items skipped without stopping the others."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from conversa.whatsapp.adapters.base import (
    WINDOW_CLOSED,
    CustomerEvent,
    EchoMessage,
    IdAlias,
    InboundMessage,
    MessageChange,
    ParsedWebhook,
    StatusUpdate,
    TemplateCategoryChange,
    TemplateInfo,
)

MEDIA_TYPES = {"image", "document", "audio", "video", "sticker"}
# Meta's template statuses folded onto ours. A FLAGGED template can still be sent (it is only
# warned about), IN_APPEAL is still under review, and anything on its way out is disabled.
TEMPLATE_STATUS = {
    "APPROVED": "approved",
    "REINSTATED": "approved",
    "FLAGGED": "approved",
    "PENDING": "pending",
    "IN_APPEAL": "pending",
    "REJECTED": "rejected",
    "PAUSED": "paused",
    "LIMIT_EXCEEDED": "paused",
    "LOCKED": "paused",
    "DISABLED": "disabled",
    "PENDING_DELETION": "disabled",
    "DELETED": "disabled",
    "ARCHIVED": "disabled",
}
# "Re-engagement message": more than 24 hours since the customer last wrote.
WINDOW_CLOSED_CODES = {131047}
# The customer's answer to our request to call them (interactive call_permission_reply).
CALL_PERMISSION_TEXT = {
    "accept": _("Call permission: accepted"),
    "reject": _("Call permission: rejected"),
    "": _("Call permission: answered"),
}


def error_reason(code: Any) -> str:
    """The vendor-neutral reason of a Meta error code (WINDOW_CLOSED), or ""."""
    try:
        return WINDOW_CLOSED if int(code) in WINDOW_CLOSED_CODES else ""
    except (TypeError, ValueError):
        return ""


def epoch(value: Any) -> datetime.datetime | None:
    """Epoch seconds (Meta); epoch milliseconds (GupShup's v3 callbacks in the same shape)."""
    try:
        number = int(value)
        if number > 10**11:  # milliseconds: seconds will not reach this for a few thousand years
            number //= 1000
        return datetime.datetime.fromtimestamp(number, tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def error_details(error: dict[str, Any]) -> str:
    data = error.get("error_data")
    return str(data.get("details") or "") if isinstance(data, dict) else ""


def error_text(error: dict[str, Any]) -> str:
    """The most useful human text of a Meta error object."""
    details = error_details(error)
    title = error.get("title") or error.get("message") or ""
    if details and title and details != title:
        return f"{title}: {details}"
    return str(details or title or "Unknown error")


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    """Only the objects of a list: a malformed item must not stop the others."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []



# What each Cloud API webhook field means to us. Fields not listed are deliberately ignored (the
# raw body stays on the event): account_update, phone_number_quality_update, business_capability_update,
# message_template_quality_update, security, flows, calls, history, smb_app_state_sync, ...
HANDLED_FIELDS = ("messages", "message_template_status_update", "template_category_update", "smb_message_echoes")
SYSTEM_EVENTS = {
    "user_changed_number": "number_changed",
    "customer_changed_number": "number_changed",
    "user_changed_user_id": "user_id_changed",
    "customer_identity_changed": "identity_changed",
}


def read_cloud_api(data: dict[str, Any], parsed: ParsedWebhook, *, gupshup: bool = False) -> None:
    """Every item of a Cloud API notification (`{"object", "entry": [{"changes": [...]}]}`), in
    payload order. GupShup's v3 callbacks use the same shape (`gupshup`: statuses then also carry
    GupShup's own `gs_id`, and timestamps in milliseconds)."""
    for entry in dicts(data.get("entry")):
        for change in dicts(entry.get("changes")):
            value = obj(change.get("value"))
            field = change.get("field", "messages")
            if field == "message_template_status_update":
                if "event" in value:  # quality updates share the field name but carry no event
                    parsed.templates.append(_template_update(value))
            elif field == "template_category_update":
                parsed.template_categories.append(TemplateCategoryChange(
                    provider_template_id=str(value.get("message_template_id") or ""),
                    name=str(value.get("message_template_name") or ""),
                    language=str(value.get("message_template_language") or ""),
                    category=str(value.get("new_category") or "").upper(),
                    previous_category=str(value.get("previous_category") or "").upper()))
            elif field == "smb_message_echoes":
                _read_echoes(value, parsed)
            elif field == "messages":
                _read_messages_value(value, parsed, gupshup=gupshup)


def _line_ref(value: dict[str, Any]) -> str:
    # The number the change is about; the caller routes it to its line (line_ref_field).
    return str(obj(value.get("metadata")).get("phone_number_id") or "")


def _read_messages_value(value: dict[str, Any], parsed: ParsedWebhook, *, gupshup: bool = False) -> None:
    line_ref = _line_ref(value)
    for error in dicts(value.get("errors")):
        parsed.errors.append({"code": error.get("code"), "title": error_text(error)})
    contacts = _contacts(value)
    for message in dicts(value.get("messages")):
        mtype = str(message.get("type") or "")
        if mtype in ("edit", "revoke"):
            parsed.changes.append(_change(message, line_ref=line_ref))
            continue
        if mtype == "system":
            parsed.customer_events.append(_customer_event(message, line_ref=line_ref))
            continue
        inbound = _inbound(message, contacts)
        inbound.line_ref = line_ref
        parsed.messages.append(inbound)
        parsed.errors.extend({"message": inbound.provider_message_id, **e} for e in inbound.errors)
    for status in dicts(value.get("statuses")):
        errors = dicts(status.get("errors"))
        first = errors[0] if errors else {}
        own_id = str(status.get("id") or "")
        gs_id = str(status.get("gs_id") or "") if gupshup else ""
        if gupshup and status.get("status") == "enqueued":
            # GupShup queued our send and names WhatsApp's id: receipts much later carry only that.
            if gs_id and own_id and gs_id != own_id:
                parsed.id_aliases.append(IdAlias(provider_message_id=gs_id, alias=own_id, line_ref=line_ref))
            continue
        parsed.statuses.append(StatusUpdate(
            provider_message_id=gs_id or own_id,
            alternate_ids=[own_id] if gs_id and own_id != gs_id else [],
            status=str(status.get("status") or ""),
            timestamp=epoch(status.get("timestamp")),
            error_code=str(first.get("code") or ""),
            error_title=error_text(first) if first else "",
            error_reason=error_reason(first.get("code")),
            line_ref=line_ref,
            reference=str(status.get("biz_opaque_callback_data") or ""),
            recipient=str(status.get("recipient_id") or status.get("recipient_user_id") or ""),
        ))


def _contacts(value: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The customers of a change by every id they are known by (wa_id, user_id): name, username."""
    found: dict[str, dict[str, str]] = {}
    for contact in dicts(value.get("contacts")):
        profile = obj(contact.get("profile"))
        info = {"name": str(profile.get("name") or ""),
                "username": str(profile.get("username") or contact.get("username") or ""),
                "user_id": str(contact.get("user_id") or "")}
        for key in (contact.get("wa_id"), contact.get("user_id")):
            if key:
                found[str(key)] = info
    return found


def _read_echoes(value: dict[str, Any], parsed: ParsedWebhook) -> None:
    """smb_message_echoes: what the business sent from the WhatsApp Business app (or a linked
    device) on the same number; `to` is the customer. Edits and deletions come the same way."""
    line_ref = _line_ref(value)
    contacts = _contacts(value)
    for message in dicts(value.get("message_echoes")):
        mtype = str(message.get("type") or "")
        customer = {**message, "from": message.get("to"), "from_user_id": message.get("to_user_id")}
        if mtype in ("edit", "revoke"):
            change = _change(customer, line_ref=line_ref)
            change.echo = True
            parsed.changes.append(change)
            continue
        echo = EchoMessage(**vars(_inbound(customer, contacts)))
        echo.line_ref = line_ref
        echo.profile_name = ""  # the customer's name is not in an echo; the business's would mislead
        parsed.echoes.append(echo)


def _change(message: dict[str, Any], *, line_ref: str) -> MessageChange:
    mtype = str(message.get("type") or "")
    content = obj(message.get(mtype))
    edited = obj(content.get("message"))
    new_type = str(edited.get("type") or "")
    new_content = obj(edited.get(new_type))
    return MessageChange(
        provider_message_id=str(message.get("id") or ""),
        original_id=str(content.get("original_message_id") or ""),
        action="edit" if mtype == "edit" else "delete",
        from_phone=str(message.get("from") or ""),
        from_user_id=str(message.get("from_user_id") or ""),
        body=str(new_content.get("body") or new_content.get("caption") or "") if new_type else "",
        timestamp=epoch(message.get("timestamp")),
        line_ref=line_ref,
    )


def _customer_event(message: dict[str, Any], *, line_ref: str) -> CustomerEvent:
    system = obj(message.get("system"))
    stype = str(system.get("type") or "")
    event = SYSTEM_EVENTS.get(stype, "other")
    return CustomerEvent(
        provider_message_id=str(message.get("id") or ""),
        event=event,
        body=str(system.get("body") or ""),
        from_phone=str(message.get("from") or system.get("customer") or ""),
        from_user_id=str(message.get("from_user_id") or system.get("previous_user_id") or ""),
        # `wa_id` is the new number (older versions: `new_wa_id`).
        new_phone=str(system.get("wa_id") or system.get("new_wa_id") or "") if event == "number_changed" else "",
        new_user_id=str(system.get("user_id") or ""),
        timestamp=epoch(message.get("timestamp")),
        line_ref=line_ref,
    )


def _order_body(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An order as text any agent reads (quantity x product — unit price currency, then the total)
    and as data."""
    items = []
    total = Decimal(0)
    currencies = set()
    for item in dicts(content.get("product_items")):
        try:
            quantity = int(item.get("quantity") or 0)
            price = Decimal(str(item.get("item_price") or 0))
        except (ValueError, ArithmeticError):
            quantity, price = 0, Decimal(0)
        currency = str(item.get("currency") or "")
        currencies.add(currency)
        total += price * quantity
        items.append({"product_retailer_id": str(item.get("product_retailer_id") or ""), "quantity": quantity,
                      "item_price": str(price), "currency": currency})
    currency = currencies.pop() if len(currencies) == 1 else ""
    lines = [str(content.get("text") or "")] if content.get("text") else []
    lines += [f"{i['quantity']} x {i['product_retailer_id']} — {i['item_price']} {i['currency']}".rstrip()
              for i in items]
    if items and currency:
        lines.append(f"= {total:.2f} {currency}")
    payload = {"catalog_id": str(content.get("catalog_id") or ""), "items": items,
               "total": f"{total:.2f}" if currency else "", "currency": currency}
    return "\n".join(lines), payload


def _inbound(message: dict[str, Any], contacts: dict[str, dict[str, str]]) -> InboundMessage:
    mtype = str(message.get("type") or "")
    sender = str(message.get("from") or "")
    user_id = str(message.get("from_user_id") or "")
    contact = contacts.get(sender) or contacts.get(user_id) or {}
    content = obj(message.get(mtype))
    context = obj(message.get("context"))
    errors = [{"code": e.get("code"), "title": error_text(e)} for e in dicts(message.get("errors"))]
    inbound = InboundMessage(
        provider_message_id=str(message.get("id") or ""),
        from_phone=sender,
        from_user_id=user_id or contact.get("user_id", ""),
        profile_name=contact.get("name", ""),
        username=contact.get("username", ""),
        kind="unsupported",
        timestamp=epoch(message.get("timestamp")),
        reply_to_provider_id=str(context.get("id") or ""),
        errors=errors,
    )
    payload: dict[str, Any] = {}
    if mtype == "text":
        inbound.kind, inbound.body = "text", str(content.get("body") or "")
    elif mtype in MEDIA_TYPES:
        inbound.kind = mtype
        inbound.media_id = str(content.get("id") or "")
        inbound.media_mime = str(content.get("mime_type") or "")
        inbound.media_filename = str(content.get("filename") or "")
        inbound.body = str(content.get("caption") or "")
        if mtype == "audio":
            payload["voice"] = bool(content.get("voice"))
        if mtype == "sticker":
            payload["animated"] = bool(content.get("animated"))
    elif mtype == "location":
        inbound.kind = "location"
        payload = {k: content.get(k) for k in ("latitude", "longitude", "name", "address", "url")
                   if content.get(k) is not None}
        inbound.body = " — ".join(str(content[k]) for k in ("name", "address") if content.get(k))
    elif mtype == "contacts":
        cards = dicts(message.get("contacts"))
        inbound.kind = "contacts"
        payload = {"contacts": cards}
        inbound.body = ", ".join(str((c.get("name") or {}).get("formatted_name") or "") for c in cards)
    elif mtype == "interactive":
        itype = str(content.get("type") or "")
        reply = obj(content.get(itype))
        inbound.kind = "interactive"
        inbound.body = str(reply.get("title") or reply.get("body") or "")
        inbound.reply_id = str(reply.get("id") or "")
        payload = {"type": itype, "reply_id": inbound.reply_id, "title": str(reply.get("title") or "")}
        if reply.get("description"):
            payload["description"] = str(reply["description"])
        if itype == "call_permission_reply":
            response = str(reply.get("response") or "")
            payload.update({"response": response, "permanent": bool(reply.get("is_permanent")),
                            "response_source": str(reply.get("response_source") or "")})
            if reply.get("expiration_timestamp"):
                expires = epoch(reply["expiration_timestamp"])
                payload["expires_at"] = expires.isoformat() if expires else ""
            inbound.body = str(CALL_PERMISSION_TEXT.get(response, CALL_PERMISSION_TEXT[""]))
        elif itype not in ("button_reply", "list_reply"):
            payload["raw"] = content  # e.g. a Flow's nfm_reply: keep it for whoever needs it
    elif mtype == "button":
        inbound.kind = "button"
        inbound.body = str(content.get("text") or "")
        inbound.reply_id = str(content.get("payload") or "")
        payload = {"payload": inbound.reply_id, "text": inbound.body}
    elif mtype == "reaction":
        inbound.kind = "reaction"
        inbound.body = str(content.get("emoji") or "")  # empty: the customer removed a reaction
        payload = {"message_id": str(content.get("message_id") or ""), "emoji": inbound.body}
        inbound.reply_to_provider_id = payload["message_id"] or inbound.reply_to_provider_id
    elif mtype == "order":
        inbound.kind = "order"
        inbound.body, payload = _order_body(content)
    else:
        # Never drop a customer's message: show it as unsupported with what Meta said.
        payload = {"type": mtype, "raw": message}
    if errors and not inbound.body:
        # What Meta could not deliver to us (an interactive reply with 131000, an unsupported
        # type): its reason is what the agent needs, not an empty bubble.
        inbound.body = str(errors[0]["title"])
    if context.get("forwarded") or context.get("frequently_forwarded"):
        payload["forwarded"] = True
    if isinstance(message.get("referral"), dict):
        payload["referral"] = message["referral"]
    if errors:
        payload["errors"] = errors
    inbound.payload = payload
    return inbound


def _template_update(value: dict[str, Any]) -> TemplateInfo:
    event = str(value.get("event") or "").upper()
    reason = value.get("reason")
    other = obj(value.get("other_info"))
    rejection = obj(value.get("rejection_info"))
    parts = [] if reason in (None, "NONE", "") else [str(reason)]
    # Why it was rejected and what to change (INVALID_FORMAT and others), or why it was locked.
    parts += [str(text) for text in (rejection.get("reason"), rejection.get("recommendation"),
                                     other.get("description")) if text]
    return TemplateInfo(
        provider_template_id=str(value.get("message_template_id") or ""),
        name=str(value.get("message_template_name") or ""),
        language=str(value.get("message_template_language") or ""),
        status=TEMPLATE_STATUS.get(event, "pending"),
        category=str(value.get("message_template_category") or ""),
        reason=f"{parts[0]}: {'; '.join(parts[1:])}" if len(parts) > 1 else "".join(parts),
    )
