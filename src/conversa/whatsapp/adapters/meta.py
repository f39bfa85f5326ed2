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

import hmac
import logging
import re
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from conversa.whatsapp.adapters.base import (
    ConfigField,
    MalformedPayload,
    OutboundList,
    OutboundMedia,
    ParsedWebhook,
    ProviderAdapter,
    SendError,
    SendResult,
    TemplateExtras,
    TemplateInfo,
    WebhookRejected,
    fetch_media_url,
    load_json,
    provider_request,
    signature_matches,
)
from conversa.whatsapp.adapters.cloud_api import (
    MEDIA_TYPES,
    TEMPLATE_STATUS,
    dicts,
    error_details,
    error_reason,
    obj,
    read_cloud_api,
)
from conversa.whatsapp.adapters.outcomes import retry_after, status_outcome, transport_error

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
# Error codes Meta documents as refused unprocessed, "try again later": throughput (130429), pair
# rate limit (131056), application/account rate limits (4, 80007), the API down or overloaded (2)
# and a service temporarily unavailable (131016, 133004). Others with a 5xx (1 "unknown", 131000
# "something went wrong") may come after the message was accepted: ambiguous, never re-sent.
RETRYABLE_CODES = {2, 4, 80007, 130429, 131016, 131056, 133004}
MAX_TEMPLATE_PAGES = 200  # a runaway `paging.next` loop must end somewhere
# A link in a text: Meta shows its preview only when asked (`preview_url`).
URL_RE = re.compile(r"https?://\S", re.IGNORECASE)
# A business-scoped user id (CC.digits, or CC.ENT.digits for a parent id): sent as `recipient`.
USER_ID_RE = re.compile(r"^[A-Z]{2}\.")
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
            return provider_request(method, url, headers=self._headers(), timeout=settings.PROVIDER_HTTP_TIMEOUT,
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
        error = obj(data.get("error"))
        code = error.get("code")
        outcome = status_outcome(response.status_code, not_processed=code in RETRYABLE_CODES,
                                 idempotent=response.request.method == "GET")
        title = str(error_details(error) or error.get("message") or f"Meta answered HTTP {response.status_code}")
        if code == 190:
            title = f"Access token expired or invalid; update the provider's access token ({title})"
        code_text = str(code if code is not None else response.status_code)
        raise SendError(title, code=code_text, reason=error_reason(code),
                        line_unusable=code == 190 or response.status_code == 401,
                        retry_after=retry_after(response), **outcome)

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
        messages = dicts(data.get("messages"))
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
            infos.extend(self._template_info(t) for t in dicts(data.get("data")))
            paging = obj(data.get("paging"))
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
        for component in dicts(item.get("components")):
            ctype = str(component.get("type") or "").upper()
            if ctype == "BODY":
                info.body = str(component.get("text") or "")
            elif ctype == "HEADER":
                fmt = str(component.get("format") or "TEXT").upper()
                info.header = str(component.get("text") or "") if fmt == "TEXT" else f"[{fmt.lower()}]"
            elif ctype == "FOOTER":
                info.footer = str(component.get("text") or "")
            elif ctype == "BUTTONS":
                info.buttons = dicts(component.get("buttons"))
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
