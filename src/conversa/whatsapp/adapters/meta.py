"""Meta WhatsApp Cloud API (graph.facebook.com).

Webhooks: GET handshake with `hub.verify_token`, POSTs signed with `X-Hub-Signature-256`
(HMAC-SHA256 of the raw body with the app secret). One POST may carry several entries, changes,
messages and statuses: all of them are returned, in payload order.

Sends: `POST {base}/{version}/{phone_number_id}/messages` with a Bearer token; the answer's
`messages[0].id` (a wamid) is the provider message id that later status webhooks refer to.

Config: provider.config {"access_token", "app_secret", "business_id"};
line.config {"phone_number_id", "waba_id", "verify_token"}.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import re
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from conversa.whatsapp.adapters.base import (
    WINDOW_CLOSED,
    ConfigField,
    CustomerEvent,
    EchoMessage,
    IdAlias,
    InboundMessage,
    MalformedPayload,
    MessageChange,
    OutboundList,
    OutboundMedia,
    ParsedWebhook,
    ProviderAdapter,
    SendError,
    SendResult,
    StatusUpdate,
    TemplateCategoryChange,
    TemplateExtras,
    TemplateInfo,
    WebhookRejected,
    fetch_media_url,
    load_json,
    signature_matches,
)
from conversa.whatsapp.adapters.outcomes import status_outcome, transport_error

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
MEDIA_TYPES = {"image", "document", "audio", "video", "sticker"}
# Error codes Meta documents as refused unprocessed, "try again later": throughput (130429), pair
# rate limit (131056), application/account rate limits (4, 80007), the API down or overloaded (2)
# and a service temporarily unavailable (131016, 133004). Others with a 5xx (1 "unknown", 131000
# "something went wrong") may come after the message was accepted: ambiguous, never re-sent.
RETRYABLE_CODES = {2, 4, 80007, 130429, 131016, 131056, 133004}
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
MAX_TEMPLATE_PAGES = 200  # a runaway `paging.next` loop must end somewhere
# "Re-engagement message": more than 24 hours since the customer last wrote.
WINDOW_CLOSED_CODES = {131047}
# A link in a text: Meta shows its preview only when asked (`preview_url`).
URL_RE = re.compile(r"https?://\S", re.IGNORECASE)
# A business-scoped user id (CC.digits, or CC.ENT.digits for a parent id): sent as `recipient`.
USER_ID_RE = re.compile(r"^[A-Z]{2}\.")
# The customer's answer to our request to call them (interactive call_permission_reply).
CALL_PERMISSION_TEXT = {
    "accept": _("Call permission: accepted"),
    "reject": _("Call permission: rejected"),
    "": _("Call permission: answered"),
}


def _reason(code: Any) -> str:
    """The vendor-neutral reason of a Meta error code (WINDOW_CLOSED), or ""."""
    try:
        return WINDOW_CLOSED if int(code) in WINDOW_CLOSED_CODES else ""
    except (TypeError, ValueError):
        return ""


def _epoch(value: Any) -> datetime.datetime | None:
    """Epoch seconds (Meta); epoch milliseconds (GupShup's v3 callbacks in the same shape)."""
    try:
        number = int(value)
        if number > 10**11:  # milliseconds: seconds will not reach this for a few thousand years
            number //= 1000
        return datetime.datetime.fromtimestamp(number, tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _details(error: dict[str, Any]) -> str:
    data = error.get("error_data")
    return str(data.get("details") or "") if isinstance(data, dict) else ""


def _error_text(error: dict[str, Any]) -> str:
    """The most useful human text of a Meta error object."""
    details = _details(error)
    title = error.get("title") or error.get("message") or ""
    if details and title and details != title:
        return f"{title}: {details}"
    return str(details or title or "Unknown error")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
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
    for entry in _dicts(data.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = _obj(change.get("value"))
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
    return str(_obj(value.get("metadata")).get("phone_number_id") or "")


def _read_messages_value(value: dict[str, Any], parsed: ParsedWebhook, *, gupshup: bool = False) -> None:
    line_ref = _line_ref(value)
    for error in _dicts(value.get("errors")):
        parsed.errors.append({"code": error.get("code"), "title": _error_text(error)})
    contacts = _contacts(value)
    for message in _dicts(value.get("messages")):
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
    for status in _dicts(value.get("statuses")):
        errors = _dicts(status.get("errors"))
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
            timestamp=_epoch(status.get("timestamp")),
            error_code=str(first.get("code") or ""),
            error_title=_error_text(first) if first else "",
            error_reason=_reason(first.get("code")),
            line_ref=line_ref,
            reference=str(status.get("biz_opaque_callback_data") or ""),
            recipient=str(status.get("recipient_id") or status.get("recipient_user_id") or ""),
        ))


def _contacts(value: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The customers of a change by every id they are known by (wa_id, user_id): name, username."""
    found: dict[str, dict[str, str]] = {}
    for contact in _dicts(value.get("contacts")):
        profile = _obj(contact.get("profile"))
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
    for message in _dicts(value.get("message_echoes")):
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
    content = _obj(message.get(mtype))
    edited = _obj(content.get("message"))
    new_type = str(edited.get("type") or "")
    new_content = _obj(edited.get(new_type))
    return MessageChange(
        provider_message_id=str(message.get("id") or ""),
        original_id=str(content.get("original_message_id") or ""),
        action="edit" if mtype == "edit" else "delete",
        from_phone=str(message.get("from") or ""),
        from_user_id=str(message.get("from_user_id") or ""),
        body=str(new_content.get("body") or new_content.get("caption") or "") if new_type else "",
        timestamp=_epoch(message.get("timestamp")),
        line_ref=line_ref,
    )


def _customer_event(message: dict[str, Any], *, line_ref: str) -> CustomerEvent:
    system = _obj(message.get("system"))
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
        timestamp=_epoch(message.get("timestamp")),
        line_ref=line_ref,
    )


def _order_body(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An order as text any agent reads (quantity x product — unit price currency, then the total)
    and as data."""
    items = []
    total = Decimal(0)
    currencies = set()
    for item in _dicts(content.get("product_items")):
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
    content = _obj(message.get(mtype))
    context = _obj(message.get("context"))
    errors = [{"code": e.get("code"), "title": _error_text(e)} for e in _dicts(message.get("errors"))]
    inbound = InboundMessage(
        provider_message_id=str(message.get("id") or ""),
        from_phone=sender,
        from_user_id=user_id or contact.get("user_id", ""),
        profile_name=contact.get("name", ""),
        username=contact.get("username", ""),
        kind="unsupported",
        timestamp=_epoch(message.get("timestamp")),
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
        cards = _dicts(message.get("contacts"))
        inbound.kind = "contacts"
        payload = {"contacts": cards}
        inbound.body = ", ".join(str((c.get("name") or {}).get("formatted_name") or "") for c in cards)
    elif mtype == "interactive":
        itype = str(content.get("type") or "")
        reply = _obj(content.get(itype))
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
                expires = _epoch(reply["expiration_timestamp"])
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
    other = _obj(value.get("other_info"))
    rejection = _obj(value.get("rejection_info"))
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


class MetaAdapter(ProviderAdapter):
    kind = "meta"
    title = "Meta WhatsApp Cloud API"
    provider_fields = (
        ConfigField("access_token", _("Access token"),
                    _("Meta: a permanent System User access token with whatsapp_business_messaging and "
                      "whatsapp_business_management permissions (Business Settings → System users)."),
                    secret=True, required=True),
        ConfigField("app_secret", _("App secret"),
                    _("Meta: the app's secret (App settings → Basic). Every webhook is checked against its "
                      "X-Hub-Signature-256 with it; without it all webhooks are refused."),
                    secret=True, required=True),
        ConfigField("business_id", _("Business id"), _("Meta: the Business Manager id (optional, for reference).")),
    )
    line_fields = (
        ConfigField("phone_number_id", _("Phone number id"),
                    _("Meta: the number's Phone number ID (WhatsApp Manager → API setup), not the number "
                      "itself."), required=True),
        ConfigField("waba_id", _("WhatsApp Business Account id"),
                    _("Meta: the WABA id; templates are synced from it.")),
        ConfigField("verify_token", _("Verify token"),
                    _("Meta: any string you choose; type the same in the app's webhook settings. Meta sends it "
                      "once to verify the callback URL."), secret=True),
    )
    # Meta posts every number of an app to the one callback URL, naming the number's id.
    line_ref_field = "phone_number_id"

    # --- inbound -------------------------------------------------------------------------
    def handshake(self, query: dict[str, str]) -> str | None:
        expected = str(self.config.get("verify_token") or "")
        given = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not expected:
            return None
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return None
        return query.get("hub.challenge", "")

    def verify(self, *, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        secret = str(self.config.get("app_secret") or "")
        if not secret:
            # Fail closed: without the app secret nobody can tell Meta from a forger.
            raise WebhookRejected("The provider has no app secret configured.")
        given = headers.get(SIGNATURE_HEADER, "")
        if not given or not signature_matches(secret=secret, body=body, given=given):
            raise WebhookRejected("Bad or missing X-Hub-Signature-256.")

    def parse(self, body: bytes) -> ParsedWebhook:
        data = load_json(body)
        parsed = ParsedWebhook()
        if not isinstance(data, dict):
            raise MalformedPayload("The body must be a JSON object.")
        if not isinstance(data.get("entry"), list):
            # Every Cloud API notification is {"object": ..., "entry": [...]}; anything else is not one.
            raise MalformedPayload("The body has no entry list.", field="entry")
        read_cloud_api(data, parsed)
        return parsed

    # --- HTTP ----------------------------------------------------------------------------
    def _url(self, *parts: str) -> str:
        base = settings.META_GRAPH_BASE_URL.rstrip("/")
        return "/".join([base, settings.META_GRAPH_VERSION, *parts])

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.get('access_token', '')}"}

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return httpx.request(method, url, headers=self._headers(), timeout=settings.PROVIDER_HTTP_TIMEOUT,
                                 **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, vendor="Meta", idempotent=method == "GET") from exc

    @staticmethod
    def _raise_for_error(response: httpx.Response) -> dict[str, Any]:
        """The JSON answer of a successful call, or the SendError Meta's error maps to (for a GET any
        5xx may be repeated: reading twice harms nobody)."""
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if response.is_success and "error" not in data:
            return data
        error = _obj(data.get("error"))
        code = error.get("code")
        outcome = status_outcome(response.status_code, not_processed=code in RETRYABLE_CODES,
                                 idempotent=response.request.method == "GET")
        title = str(_details(error) or error.get("message") or f"Meta answered HTTP {response.status_code}")
        if code == 190:
            title = f"Access token expired or invalid; update the provider's access token ({title})"
        code_text = str(code if code is not None else response.status_code)
        raise SendError(title, code=code_text, reason=_reason(code),
                        line_unusable=code == 190 or response.status_code == 401, **outcome)

    def _send(self, payload: dict[str, Any], reference: str) -> SendResult:
        phone_number_id = str(self.config.get("phone_number_id") or "")
        if not phone_number_id:
            raise SendError("The line has no Meta phone number id configured.", code="config")
        to = str(payload.pop("to", ""))
        # A customer known only by user id is addressed by `recipient` instead of `to`.
        address = {"recipient": to} if USER_ID_RE.match(to) else {"to": to}
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **address, **payload}
        if reference:
            # Echoed back in every status webhook of this message (StatusUpdate.reference).
            body["biz_opaque_callback_data"] = reference
        response = self._request("POST", self._url(phone_number_id, "messages"), json=body)
        data = self._raise_for_error(response)
        messages = _dicts(data.get("messages"))
        if not messages or not messages[0].get("id"):
            # Accepted without an id: it may well go out. Its statuses reconcile it by reference.
            raise SendError("Meta accepted the message without returning its id.", code="no-id",
                            ambiguous=True)
        return SendResult(provider_message_id=str(messages[0]["id"]), raw=data)

    # --- outbound ------------------------------------------------------------------------
    def send_text(self, *, to: str, text: str, reply_to: str = "", reference: str = "") -> SendResult:
        content: dict[str, Any] = {"body": text}
        if URL_RE.search(text):
            content["preview_url"] = True
        payload: dict[str, Any] = {"to": to, "type": "text", "text": content}
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return self._send(payload, reference)

    def send_list(self, *, to: str, menu: OutboundList, reference: str = "") -> SendResult:
        interactive: dict[str, Any] = {
            "type": "list",
            "body": {"text": menu.body},
            "action": {"button": menu.button[:20], "sections": [{"title": menu.button[:24], "rows": [
                {"id": row.id, "title": row.title[:24], **({"description": row.description[:72]}
                                                           if row.description else {})}
                for row in menu.rows[:10]]}]},
        }
        if menu.header:
            interactive["header"] = {"type": "text", "text": menu.header[:60]}
        if menu.footer:
            interactive["footer"] = {"text": menu.footer[:60]}
        return self._send({"recipient_type": "individual", "to": to, "type": "interactive",
                           "interactive": interactive}, reference)

    def send_media(self, *, to: str, media: OutboundMedia, reply_to: str = "", reference: str = "") -> SendResult:
        kind = media.kind if media.kind in MEDIA_TYPES else "document"
        obj: dict[str, Any] = {"link": media.url}
        # Meta rejects captions on audio and stickers, and filenames on anything but documents.
        if media.caption and kind not in ("audio", "sticker"):
            obj["caption"] = media.caption
        if kind == "document" and media.filename:
            obj["filename"] = media.filename
        payload: dict[str, Any] = {"to": to, "type": kind, kind: obj}
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return self._send(payload, reference)

    def send_template(self, *, to: str, template_name: str, template_id: str, language: str,
                      params: list[str], reference: str = "", extras: TemplateExtras | None = None) -> SendResult:
        extras = extras or TemplateExtras()
        template: dict[str, Any] = {"name": template_name, "language": {"code": language}}
        components: list[dict[str, Any]] = []
        if extras.header is not None:
            kind = extras.header.kind if extras.header.kind in ("image", "video", "document") else "document"
            media: dict[str, Any] = {"link": extras.header.url}
            if kind == "document" and extras.header.filename:
                media["filename"] = extras.header.filename
            components.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
        if params:
            names = extras.param_names
            components.append({"type": "body", "parameters": [
                # Named templates ({{first_name}}) need each value's parameter_name.
                {"type": "text", "parameter_name": names[n], "text": str(p)} if n < len(names)
                else {"type": "text", "text": str(p)}
                for n, p in enumerate(params)]})
        for button in extras.buttons:
            value = ({"type": "payload", "payload": button.value} if button.sub_type == "quick_reply"
                     else {"type": "text", "text": button.value})
            components.append({"type": "button", "sub_type": button.sub_type, "index": str(button.index),
                               "parameters": [value]})
        if components:
            template["components"] = components
        return self._send({"to": to, "type": "template", "template": template}, reference)

    def mark_read(self, *, provider_message_id: str) -> None:
        phone_number_id = str(self.config.get("phone_number_id") or "")
        if not phone_number_id:
            raise SendError("The line has no Meta phone number id configured.", code="config")
        self._raise_for_error(self._request("POST", self._url(phone_number_id, "messages"), json={
            "messaging_product": "whatsapp", "status": "read", "message_id": provider_message_id}))

    def download_media(self, media_ref: str, *, max_bytes: int) -> tuple[bytes, str]:
        # Step 1: the media id resolves to a short-lived URL (and the mime type).
        info = self._raise_for_error(self._request("GET", self._url(media_ref)))
        url = str(info.get("url") or "")
        if not url:
            raise SendError("Meta returned no URL for the media.", code="no-url", retryable=True)
        # Step 2: the bytes themselves; the URL needs the same Bearer token. It is data from an
        # answer, not our configured endpoint: fetched through the SSRF guard.
        fetched = fetch_media_url(url, max_bytes=max_bytes, headers=self._headers())
        mime = str(info.get("mime_type") or fetched.headers.get("content-type")
                   or "application/octet-stream")
        return fetched.content, mime

    def fetch_templates(self) -> list[TemplateInfo]:
        waba_id = str(self.config.get("waba_id") or "")
        if not waba_id:
            raise SendError("The line has no WhatsApp Business Account (WABA) id configured.", code="config")
        url: str | None = self._url(waba_id, "message_templates")
        params: dict[str, Any] | None = {"limit": 100}
        infos: list[TemplateInfo] = []
        for _page in range(MAX_TEMPLATE_PAGES):
            if not url:
                break
            data = self._raise_for_error(self._request("GET", url, params=params))
            infos.extend(self._template_info(t) for t in _dicts(data.get("data")))
            paging = _obj(data.get("paging"))
            url = paging.get("next") or None
            params = None  # `next` is a complete URL with its own cursor
        return infos

    @staticmethod
    def _template_info(item: dict[str, Any]) -> TemplateInfo:
        info = TemplateInfo(
            provider_template_id=str(item.get("id") or ""),
            name=str(item.get("name") or ""),
            language=str(item.get("language") or ""),
            status=TEMPLATE_STATUS.get(str(item.get("status") or "").upper(), "pending"),
            category=str(item.get("category") or "").upper(),
            reason="" if item.get("rejected_reason") in (None, "", "NONE") else str(item["rejected_reason"]),
        )
        for component in _dicts(item.get("components")):
            ctype = str(component.get("type") or "").upper()
            if ctype == "BODY":
                info.body = str(component.get("text") or "")
            elif ctype == "HEADER":
                fmt = str(component.get("format") or "TEXT").upper()
                info.header = str(component.get("text") or "") if fmt == "TEXT" else f"[{fmt.lower()}]"
            elif ctype == "FOOTER":
                info.footer = str(component.get("text") or "")
            elif ctype == "BUTTONS":
                info.buttons = _dicts(component.get("buttons"))
        return info

    def check_connection(self) -> str:
        phone_number_id = str(self.config.get("phone_number_id") or "")
        if not phone_number_id:
            raise SendError("The line has no Meta phone number id configured.", code="config")
        data = self._raise_for_error(self._request(
            "GET", self._url(phone_number_id),
            params={"fields": "display_phone_number,verified_name,quality_rating"},
        ))
        name = data.get("verified_name") or "?"
        number = data.get("display_phone_number") or phone_number_id
        quality = data.get("quality_rating") or "unknown"
        return f"Connected to Meta: {name} ({number}), quality rating {quality}."
