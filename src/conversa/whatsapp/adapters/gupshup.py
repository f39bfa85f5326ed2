"""GupShup self-serve WhatsApp API (api.gupshup.io), v2 callbacks.

GupShup signs nothing, so a callback is accepted only when it carries our secret: either
`?token=<secret>` in the callback URL configured in GupShup's dashboard, or an
`X-Conversa-Token: <secret>` header (when a proxy in front adds it).

Ids: a send answers `{"status": "submitted", "messageId": <GupShup id>}`; that is what we store.
Later `message-event`s for sent / delivered / read carry the WhatsApp id in `id` and the GupShup
id in `gsId`; enqueued / failed carry the GupShup id in `id`. Both are offered to the inbox.

Config: provider.config {"api_key"}, provider.webhook_secret (or line.config "webhook_secret");
line.config {"app_name", "app_id"}; the line's number is the `source`.
"""

from __future__ import annotations

import datetime
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from conversa.whatsapp.adapters.base import (
    WINDOW_CLOSED,
    ConfigField,
    IdAlias,
    InboundMessage,
    LineNotice,
    MalformedPayload,
    OutboundList,
    OutboundMedia,
    ParsedWebhook,
    ProviderAdapter,
    SendError,
    SendResult,
    StatusUpdate,
    TemplateExtras,
    TemplateInfo,
    WebhookRejected,
    fetch_media_url,
    json_objects,
    load_json,
    provider_request,
)
from conversa.whatsapp.adapters.cloud_api import read_cloud_api
from conversa.whatsapp.adapters.outcomes import status_outcome, transport_error

logger = logging.getLogger(__name__)

TOKEN_HEADER = "x-conversa-token"
MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio", "sticker": "sticker", "file": "document"}
# Delivery receipts that map one to one onto ours. `enqueued` only means GupShup queued it (we
# already show "queued" until the send call answers, then "sent"), and `deleted` is the customer
# deleting a message: neither moves a delivery status.
DLR_STATUSES = {"sent", "delivered", "read"}
TEMPLATE_STATUS = {
    "approved": "approved",
    "enabled": "approved",
    "pending": "pending",
    "submitted": "pending",
    "rejected": "rejected",
    "failed": "rejected",
    "paused": "paused",
    "disabled": "disabled",
    "deleted": "disabled",
}
# GupShup passes WhatsApp's own failure codes through: 131047 is "more than 24 hours since the
# customer last replied".
WINDOW_CLOSED_CODES = {"131047"}


def _millis(value: Any) -> datetime.datetime | None:
    """GupShup envelope timestamps are epoch milliseconds (`payload.ts` is seconds)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number > 10**11:  # milliseconds: seconds will not reach this for a few thousand years
        number //= 1000
    try:
        return datetime.datetime.fromtimestamp(number, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_v3(event: dict[str, Any]) -> bool:
    return event.get("object") == "whatsapp_business_account" and isinstance(event.get("entry"), list)


def _is_mismatch(etype: Any, payload: dict[str, Any]) -> bool:
    """GupShup's notice that the app's number and its WhatsApp account no longer match (the number
    migrated elsewhere, the key changed): a `mismatch` callback, or an account/system event of that type."""
    kinds = {str(etype or "").lower(), str(payload.get("type") or "").lower()}
    return any("mismatch" in kind for kind in kinds)


def _mismatch_text(payload: dict[str, Any]) -> str:
    details = [str(payload[k]) for k in ("reason", "description", "message", "phone", "type") if payload.get(k)]
    return ("GupShup reports a mismatch for this line (number migrated or key changed): "
            + ("; ".join(details) if details else "no details") + ". Check the app in GupShup's dashboard.")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json_object(value: Any) -> dict[str, Any]:
    """GupShup nests some JSON as strings (containerMeta): decode those, tolerate garbage."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            decoded = load_json(value)
        except MalformedPayload:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


class GupshupAdapter(ProviderAdapter):
    kind = "gupshup"
    title = "GupShup"
    provider_fields = (
        ConfigField("api_key", _("API key"), _("GupShup: the account's API key (dashboard → profile)."),
                    secret=True, required=True),
    )
    line_fields = (
        ConfigField("app_name", _("App name"), _("GupShup: the app's name, sent as src.name."), required=True),
        ConfigField("app_id", _("App id"), _("GupShup: the app's id (a UUID); templates are synced from it.")),
        ConfigField("app_token", _("Partner app token"),
                    _("GupShup: the app's Partner API access token; needed only to send read receipts."),
                    secret=True),
    )
    # GupShup signs nothing: the webhook secret travels in the callback URL.
    callback_url_suffix = "?token=<webhook secret>"

    # --- inbound -------------------------------------------------------------------------
    def _secret(self) -> str:
        return str(self.config.get("webhook_secret") or self.provider.webhook_secret or "")

    def verify(self, *, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        secret = self._secret()
        if not secret:
            # Fail closed: an unsigned vendor with no secret would accept anybody's messages.
            raise WebhookRejected("The provider has no webhook secret configured.")
        given = query.get("token") or headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise WebhookRejected("Missing or wrong webhook token.")

    def parse(self, body: bytes) -> ParsedWebhook:
        parsed = ParsedWebhook()
        events = json_objects(body, parsed)
        if not any(_is_v3(event) or (isinstance(event.get("type"), str) and event["type"]) for event in events):
            # Every GupShup callback names its type (v2: message, message-event, ...) or is v3.
            raise MalformedPayload("The callback has no type.", field="type")
        for event in events:
            if _is_v3(event):
                # A v3 callback: GupShup relays Meta's own format (plus gs_app_id and gs_id).
                # Its platform-event (connectivity check) carries nothing and is ignored.
                read_cloud_api(event, parsed, gupshup=True)
            elif isinstance(event.get("type"), str) and event["type"]:
                self._parse_v2(event, parsed)
            else:
                parsed.errors.append({"error": "callback without a type (neither a v2 nor a v3 callback)"})
        return parsed

    def _parse_v2(self, event: dict[str, Any], parsed: ParsedWebhook) -> None:
        etype = event.get("type")
        payloads = event.get("payload")
        # Batches are not documented for v2, but iterate if a list ever comes.
        for payload in payloads if isinstance(payloads, list) else [payloads]:
            if not isinstance(payload, dict):
                parsed.errors.append({"error": f"{etype}: payload is not an object"})
                continue
            if etype == "message":
                parsed.messages.append(self._inbound(event, payload))
            elif etype == "message-event":
                self._message_event(event, payload, parsed)
            elif etype == "template-event":
                template = self._template_event(payload)
                if template is not None:
                    parsed.templates.append(template)
            elif _is_mismatch(etype, payload):
                parsed.line_notices.append(LineNotice(problem=_mismatch_text(payload)))
            else:
                # user-event (sandbox-start / opted-in / opted-out), billing-event, account-event,
                # platform-event (connectivity-check): the raw callback is stored; nothing to apply.
                logger.info("gupshup %s for line %s: %s", etype, self.line.pk, payload.get("type"))

    def _message_event(self, event: dict[str, Any], payload: dict[str, Any], parsed: ParsedWebhook) -> None:
        if payload.get("type") == "enqueued":
            # GupShup queued our send and names WhatsApp's id for it: receipts that come after a
            # week carry only that id (no gsId), so it is kept as the message's other id.
            whatsapp_id = str(_dict(payload.get("payload")).get("whatsappMessageId") or "")
            own_id = str(payload.get("id") or "")
            if whatsapp_id and own_id and whatsapp_id != own_id:
                parsed.id_aliases.append(IdAlias(provider_message_id=own_id, alias=whatsapp_id))
            return
        status = self._status(event, payload)
        if status is not None:
            parsed.statuses.append(status)

    def _inbound(self, event: dict[str, Any], payload: dict[str, Any]) -> InboundMessage:
        itype = str(payload.get("type") or "")
        # v2 nests the content in payload.payload; tolerate the flat shape some relays send.
        content = _dict(payload.get("payload")) or payload
        sender = _dict(payload.get("sender"))
        context = _dict(payload.get("context"))
        inbound = InboundMessage(
            provider_message_id=str(payload.get("id") or ""),
            from_phone=str(sender.get("phone") or payload.get("source") or ""),
            # Meta's business-scoped user id, when the app has BSUIDs enabled.
            from_user_id=str(sender.get("userId") or ""),
            profile_name=str(sender.get("name") or ""),
            kind="unsupported",
            timestamp=_millis(event.get("timestamp")),
            # Our outbound messages are stored under the GupShup id: prefer it to the WhatsApp id.
            reply_to_provider_id=str(context.get("gsId") or context.get("id") or ""),
        )
        extra: dict[str, Any] = {}
        if itype == "text":
            inbound.kind, inbound.body = "text", str(content.get("text") or "")
        elif itype in MEDIA_KINDS:
            inbound.kind = MEDIA_KINDS[itype]
            inbound.media_id = str(content.get("url") or "")  # fetched later by download_media
            inbound.media_mime = str(content.get("contentType") or content.get("content-type") or "")
            inbound.media_filename = str(content.get("name") or "")
            inbound.body = str(content.get("caption") or "")
        elif itype == "location":
            inbound.kind = "location"
            extra = {k: content.get(k) for k in ("latitude", "longitude", "name", "address")
                     if content.get(k) is not None}
            inbound.body = " — ".join(str(content[k]) for k in ("name", "address") if content.get(k))
        elif itype == "contact":
            cards = [c for c in content.get("contacts") or [] if isinstance(c, dict)]
            inbound.kind = "contacts"
            extra = {"contacts": cards}
            inbound.body = ", ".join(str(_dict(c.get("name")).get("formatted_name") or "") for c in cards)
        elif itype in ("button_reply", "list_reply"):
            inbound.kind = "interactive"
            inbound.body = str(content.get("title") or "")
            # A list row comes back with the id we sent as its postbackText (`id` is GupShup's own
            # row number); a button reply carries the button's id in `id`.
            inbound.reply_id = str(content.get("postbackText") or content.get("id") or "")
            extra = {"type": itype, "reply_id": inbound.reply_id, "title": inbound.body}
            for key in ("reply", "description"):
                if content.get(key):
                    extra[key] = str(content[key])
        elif itype == "quick_reply":
            inbound.kind = "button"
            inbound.body = str(content.get("text") or "")
            inbound.reply_id = str(content.get("postbackText") or "")
            extra = {"payload": inbound.reply_id, "text": inbound.body}
        else:
            extra = {"type": itype, "raw": payload}
        inbound.payload = extra
        return inbound

    def _status(self, event: dict[str, Any], payload: dict[str, Any]) -> StatusUpdate | None:
        etype = str(payload.get("type") or "")
        if etype not in DLR_STATUSES and etype != "failed":
            return None
        inner = _dict(payload.get("payload"))
        own_id = str(payload.get("id") or "")
        gs_id = str(payload.get("gsId") or "")
        # sent/delivered/read: id is WhatsApp's, gsId ours; failed: id is ours (and an async
        # failure may also carry a gsId). Correlate on the GupShup id, keep the other as alternate.
        primary = gs_id or own_id
        update = StatusUpdate(
            provider_message_id=primary,
            status=etype,
            timestamp=_millis(inner.get("ts")) or _millis(event.get("timestamp")),
            alternate_ids=[own_id] if gs_id and own_id and own_id != gs_id else [],
            # GupShup echoes nothing of ours: an unconfirmed send is matched on recipient and time.
            recipient=str(payload.get("destination") or ""),
        )
        if etype == "failed":
            update.error_code = str(inner.get("code") or "")
            update.error_title = str(inner.get("reason") or "Failed")
            update.error_reason = WINDOW_CLOSED if update.error_code in WINDOW_CLOSED_CODES else ""
        return update

    @staticmethod
    def _template_event(payload: dict[str, Any]) -> TemplateInfo | None:
        if payload.get("type") not in (None, "status-update") or not payload.get("status"):
            return None  # category / quality updates do not change whether a template can be sent
        status = TEMPLATE_STATUS.get(str(payload["status"]).lower(), "pending")
        rejected = str(payload.get("rejectedReason") or "")
        rejected = "" if rejected.upper() == "NONE" else rejected
        description = str(payload.get("description") or payload.get("reason") or "")
        # A rejection says why in rejectedReason; a pause (or anything else) in its description.
        reason = (rejected or description) if status == "rejected" else (description or rejected)
        return TemplateInfo(
            provider_template_id=str(payload.get("id") or ""),
            name=str(payload.get("elementName") or ""),
            language=str(payload.get("languageCode") or ""),
            status=status,
            reason=reason,
        )

    # --- HTTP ----------------------------------------------------------------------------
    def _base(self) -> str:
        return settings.GUPSHUP_BASE_URL.rstrip("/")

    def _request(self, method: str, url: str, *, with_key: bool = True, headers: dict[str, str] | None = None,
                 **kwargs: Any) -> httpx.Response:
        headers = {**({"apikey": str(self.config.get("api_key") or "")} if with_key else {}), **(headers or {})}
        try:
            return provider_request(method, url, headers=headers, timeout=settings.PROVIDER_HTTP_TIMEOUT,
                                 **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, vendor="GupShup", idempotent=method == "GET") from exc

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        """The JSON answer, or SendError. GupShup may say `"status": "error"` with HTTP 200."""
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        # GupShup documents 4001 as "API rate limited"; a 5xx on a GET may always be repeated.
        outcome = status_outcome(response.status_code, not_processed=str(data.get("code")) == "4001",
                                 idempotent=response.request.method == "GET")
        if not response.is_success or data.get("status") == "error":
            message = data.get("message")
            if isinstance(message, dict):  # some endpoints nest {"message": {"message": ...}}
                message = message.get("message") or json.dumps(message)
            title = str(message or f"GupShup answered HTTP {response.status_code}")
            code = str(data.get("code") or (response.status_code if not response.is_success else "error"))
            unusable = response.status_code in (401, 403) or "authentication" in title.lower()
            raise SendError(title, code=code, line_unusable=unusable, **outcome,
                            reason=WINDOW_CLOSED if code in WINDOW_CLOSED_CODES else "")
        return data

    def _post_message(self, path: str, fields: dict[str, str]) -> SendResult:
        app_name = str(self.config.get("app_name") or "")
        if not app_name:
            raise SendError("The line has no GupShup app name configured.", code="config")
        form = {"channel": "whatsapp", "source": self.line.number.lstrip("+"), "src.name": app_name, **fields}
        data = self._answer(self._request("POST", f"{self._base()}{path}", data=form))
        message_id = data.get("messageId")
        if data.get("status") != "submitted" or not message_id:
            # A 2xx we cannot read: GupShup may have taken the message.
            raise SendError(f"Unexpected GupShup answer: {json.dumps(data)[:300]}", code="unexpected",
                            ambiguous=True)
        return SendResult(provider_message_id=str(message_id), raw=data)

    # --- outbound ------------------------------------------------------------------------
    def send_text(self, *, to: str, text: str, reply_to: str = "", reference: str = "") -> SendResult:
        message: dict[str, Any] = {"type": "text", "text": text}
        if reply_to:
            message["context"] = {"msgId": reply_to}
        return self._post_message("/wa/api/v1/msg", {"destination": to, "message": json.dumps(message)})

    def send_list(self, *, to: str, menu: OutboundList, reference: str = "") -> SendResult:
        # GupShup's "list" message; the chosen row comes back as a list_reply with its postbackText.
        message = {
            "type": "list", "title": menu.header or menu.button, "body": menu.body, "msgid": "menu",
            "globalButtons": [{"type": "text", "title": menu.button[:20]}],
            "items": [{"title": menu.button[:24], "subtitle": menu.footer, "options": [
                {"type": "text", "title": row.title[:24], "description": row.description[:72],
                 "postbackText": row.id} for row in menu.rows[:10]]}],
        }
        return self._post_message("/wa/api/v1/msg", {"destination": to, "message": json.dumps(message)})

    def send_media(self, *, to: str, media: OutboundMedia, reply_to: str = "", reference: str = "") -> SendResult:
        message: dict[str, Any]
        if media.kind == "image":
            message = {"type": "image", "originalUrl": media.url, "previewUrl": media.url}
        elif media.kind in ("audio", "video", "sticker"):
            message = {"type": media.kind, "url": media.url}
        else:
            message = {"type": "file", "url": media.url, "filename": media.filename or "file"}
        if media.caption and media.kind not in ("audio", "sticker"):
            message["caption"] = media.caption
        if reply_to:
            message["context"] = {"msgId": reply_to}
        return self._post_message("/wa/api/v1/msg", {"destination": to, "message": json.dumps(message)})

    def send_template(self, *, to: str, template_name: str, template_id: str, language: str,
                      params: list[str], reference: str = "", extras: TemplateExtras | None = None) -> SendResult:
        template = {"id": template_id, "params": [str(p) for p in params]}
        fields = {"destination": to, "template": json.dumps(template)}
        header = extras.header if extras else None
        if header is not None:
            # A media header travels as the `message` field: {"type": "image", "image": {"link": ...}}.
            kind = header.kind if header.kind in ("image", "video", "document") else "document"
            media: dict[str, Any] = {"link": header.url}
            if kind == "document" and header.filename:
                media["filename"] = header.filename
            fields["message"] = json.dumps({"type": kind, kind: media})
        return self._post_message("/wa/api/v1/template/msg", fields)

    def mark_read(self, *, provider_message_id: str) -> None:
        # GupShup documents this on its Partner API only ("Mark message as Read/Typing indicator"):
        # the app's Partner token, and WhatsApp's id of the customer's message, which is the `id` of
        # an inbound v2 callback (what Conversa stores as the inbound message's id).
        app_id = str(self.config.get("app_id") or "")
        app_token = str(self.config.get("app_token") or "")
        if not app_id or not app_token:
            raise SendError("The line has no GupShup app id or Partner app token configured.", code="config")
        event = {"type": "message-event", "message": {
            "messaging_product": "whatsapp", "status": "read", "message_id": provider_message_id}}
        # As documented: a JSON body under a form content type.
        self._answer(self._request(
            "POST", f"{settings.GUPSHUP_PARTNER_BASE_URL.rstrip('/')}/partner/app/{app_id}/v1/event",
            with_key=False, content=json.dumps(event),
            headers={"Authorization": app_token, "Content-Type": "application/x-www-form-urlencoded"}))

    def download_media(self, media_ref: str, *, max_bytes: int) -> tuple[bytes, str]:
        # Only GupShup's own hosts get our API key: a media URL is data from a callback, fetched
        # through the SSRF guard.
        host = urlsplit(media_ref).hostname or ""
        ours = host == urlsplit(self._base()).hostname or host.endswith(".gupshup.io")
        headers = {"apikey": str(self.config.get("api_key") or "")} if ours else {}
        fetched = fetch_media_url(media_ref, max_bytes=max_bytes, headers=headers)
        return fetched.content, fetched.headers.get("content-type", "application/octet-stream")

    def _templates_answer(self) -> dict[str, Any]:
        app_id = str(self.config.get("app_id") or "")
        if not app_id:
            raise SendError("The line has no GupShup app id configured.", code="config")
        return self._answer(self._request("GET", f"{self._base()}/wa/app/{app_id}/template"))

    def fetch_templates(self) -> list[TemplateInfo]:
        infos = []
        for item in self._templates_answer().get("templates") or []:
            if not isinstance(item, dict):
                continue
            meta = _json_object(item.get("containerMeta"))
            buttons = meta.get("buttons")
            infos.append(TemplateInfo(
                provider_template_id=str(item.get("id") or ""),
                name=str(item.get("elementName") or ""),
                language=str(item.get("languageCode") or ""),
                status=TEMPLATE_STATUS.get(str(item.get("status") or "").lower(), "pending"),
                category=str(item.get("category") or "").upper(),
                # `data` glues header and body together; containerMeta keeps them apart.
                body=str(meta.get("data") or item.get("data") or ""),
                header=str(meta.get("header") or ""),
                footer=str(meta.get("footer") or ""),
                buttons=[b for b in buttons if isinstance(b, dict)] if isinstance(buttons, list) else [],
                reason=str(item.get("reason") or ""),
            ))
        return infos

    def check_connection(self) -> str:
        templates = self._templates_answer().get("templates") or []
        return (f"Connected to GupShup: app {self.config.get('app_name') or '?'} answers, "
                f"{len(templates)} template(s) on file.")
