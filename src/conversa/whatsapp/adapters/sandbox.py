"""The sandbox provider: a WhatsApp line with no account anywhere, for demos and tests.

Webhook (POST /webhooks/sandbox/<line_id>/), one JSON object or a list of them:
- a customer message: {"id": "m1", "from": "+5491155550001", "name": "Ana", "text": "Hola"}
  optional "type" (text/image/document/audio/video/location) with "media_url", "mime_type",
  "filename", "latitude"/"longitude". "media_url" must be a signed media link of this app (no
  other URL is fetched: the sandbox is open to anyone).
- a choice from a list or buttons: {"id": "m2", "from": ..., "type": "interactive", "reply_id":
  "<the row's id>", "text": "<its title>"}.
- a delivery status: {"status": {"id": "<provider message id>", "status": "delivered"}}
  (also "error_code" / "error_title" for failed; "error_code": "window_closed" for a closed window;
  "reference": the "reference" of the relayed send, as Meta's biz_opaque_callback_data).
If the provider has a webhook secret, requests must carry X-Conversa-Signature:
sha256=<HMAC-SHA256(secret, raw body)>.

Sends are accepted locally (the customer simulator reads them from the database), unless the
provider config has "api_url": then they are POSTed there as JSON (with our "reference") and the
answer's "id" is kept.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext_lazy as _

from conversa.core import media as stored_media
from conversa.whatsapp.adapters.base import (
    WINDOW_CLOSED,
    ConfigField,
    InboundMessage,
    OutboundMedia,
    ParsedWebhook,
    ProviderAdapter,
    SendError,
    SendResult,
    StatusUpdate,
    TemplateExtras,
    WebhookRejected,
    json_objects,
    signature_matches,
)
from conversa.whatsapp.adapters.outcomes import status_outcome, transport_error

MEDIA_KINDS = {"image", "document", "audio", "video", "sticker"}


def _scalar(value: Any) -> str:
    """A string or number as text; anything else (missing, null, an object) as "" (then rejected)."""
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


class SandboxAdapter(ProviderAdapter):
    kind = "sandbox"
    title = "Sandbox"
    provider_fields = (
        ConfigField("api_url", _("Relay URL"), _("Sandbox: optional HTTP endpoint sends are POSTed to.")),
    )
    has_simulator = True

    def verify(self, *, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        secret = self.provider.webhook_secret
        if not secret:
            return
        given = headers.get("x-conversa-signature", "")
        if not signature_matches(secret=secret, body=body, given=given):
            raise WebhookRejected("Bad or missing X-Conversa-Signature.")

    def parse(self, body: bytes) -> ParsedWebhook:
        parsed = ParsedWebhook()
        for item in json_objects(body, parsed):
            if isinstance(item.get("status"), dict):
                st = item["status"]
                error_code = str(st.get("error_code", ""))
                parsed.statuses.append(
                    StatusUpdate(
                        provider_message_id=_scalar(st.get("id")),
                        status=_scalar(st.get("status")),
                        error_code=error_code,
                        error_title=str(st.get("error_title", "")),
                        error_reason=WINDOW_CLOSED if error_code == WINDOW_CLOSED else "",
                        timestamp=datetime.datetime.now(datetime.UTC),
                        reference=_scalar(st.get("reference")),
                    )
                )
                continue
            kind = str(item.get("type") or "text")
            payload: dict[str, Any] = {}
            reply_id = _scalar(item.get("reply_id")) if kind == "interactive" else ""
            if kind == "location":
                payload = {"latitude": item.get("latitude"), "longitude": item.get("longitude"),
                           "name": item.get("location_name", "")}
            elif kind == "interactive":
                payload = {"type": "list_reply", "reply_id": reply_id, "title": str(item.get("text") or "")}
            parsed.messages.append(
                InboundMessage(
                    provider_message_id=_scalar(item.get("id")),
                    from_phone=_scalar(item.get("from")),
                    profile_name=str(item.get("name") or ""),
                    kind=kind if kind in MEDIA_KINDS | {"text", "location", "interactive"} else "unsupported",
                    body=str(item.get("text") or item.get("caption") or ""),
                    payload=payload,
                    media_id=str(item.get("media_url") or "") if kind in MEDIA_KINDS else "",
                    media_mime=str(item.get("mime_type") or ""),
                    media_filename=str(item.get("filename") or ""),
                    reply_to_provider_id=str(item.get("reply_to") or ""),
                    reply_id=reply_id,
                    timestamp=datetime.datetime.now(datetime.UTC),
                )
            )
        return parsed

    def _relay(self, payload: dict[str, Any], reference: str) -> SendResult:
        api_url = self.config.get("api_url")
        if not api_url:
            return SendResult(provider_message_id=f"sandbox-{uuid.uuid4().hex}")
        try:
            response = httpx.post(api_url, json={**payload, "reference": reference},
                                  timeout=settings.PROVIDER_HTTP_TIMEOUT)
        except httpx.HTTPError as exc:
            raise transport_error(exc, vendor="Sandbox relay") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 500 or response.status_code == 429:
            raise SendError(f"Sandbox relay answered {response.status_code}", code=str(response.status_code),
                            **status_outcome(response.status_code))
        if response.status_code >= 400 or "id" not in data:
            error = data.get("error") or {}
            raise SendError(str(error.get("message") or f"HTTP {response.status_code}"),
                            code=str(error.get("code") or response.status_code))
        return SendResult(provider_message_id=str(data["id"]), raw=data)

    def download_media(self, media_ref: str, *, max_bytes: int) -> tuple[bytes, str]:
        # The sandbox is open to anyone (no account, the demo's simulator): it never fetches a URL
        # from a payload. Its "media_url" must be a signed link this app made (the media an agent
        # sent), read straight from our storage (docs/decisions.md).
        name = stored_media.storage_name_from_link(media_ref)
        if name is None:
            raise SendError("The sandbox only accepts media links made by this app (signed, unexpired).",
                            code="refused")
        try:
            with default_storage.open(name, "rb") as stored:
                content = stored.read(max_bytes + 1)
        except OSError as exc:
            raise SendError("The linked media no longer exists.", code="gone") from exc
        if len(content) > max_bytes:
            raise SendError(f"The file is too big (over {max_bytes} bytes).", code="too-big")
        return content, stored_media.stored_mime(name)

    def send_text(self, *, to: str, text: str, reply_to: str = "", reference: str = "") -> SendResult:
        return self._relay({"to": to, "type": "text", "text": text, "reply_to": reply_to}, reference)

    def send_media(self, *, to: str, media: OutboundMedia, reply_to: str = "", reference: str = "") -> SendResult:
        return self._relay({"to": to, "type": media.kind, "url": media.url, "filename": media.filename,
                            "caption": media.caption}, reference)

    def send_template(self, *, to: str, template_name: str, template_id: str, language: str,
                      params: list[str], reference: str = "", extras: TemplateExtras | None = None) -> SendResult:
        return self._relay({"to": to, "type": "template", "template": template_name, "language": language,
                            "params": params}, reference)
