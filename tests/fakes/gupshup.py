"""GupShup's self-serve WhatsApp API, as far as Conversa uses it: sends, templates, media."""

from __future__ import annotations

import itertools
import json
import re
import uuid

from .server import FakeServer, Recorded, Reply, fixture


class GupshupFake(FakeServer):
    def __init__(self, *, api_key: str, app_id: str, app_token: str = "partner-app-token") -> None:
        super().__init__()
        self.api_key = api_key
        self.app_token = app_token
        self.read_receipts: list[str] = []  # message ids marked read through the Partner API
        self.media: dict[str, tuple[bytes, str]] = {}  # file name under /media/ → (bytes, mime)
        self.sent_ids: list[str] = []
        self._ids = itertools.count(1)
        self.route("POST", r"/wa/api/v1/msg", self._send)
        self.route("POST", r"/wa/api/v1/template/msg", self._send)
        self.route("GET", rf"/wa/app/{re.escape(app_id)}/template",
                   lambda r, m: Reply(200, fixture("gupshup", "api_templates")))
        self.route("GET", r"/media/(?P<name>[\w.-]+)", self._media)
        # Partner API (partner.gupshup.io in production), authorised by the app's token.
        self.route("POST", rf"/partner/app/{re.escape(app_id)}/v1/event", self._event)

    def authorize(self, request: Recorded) -> Reply | None:
        if request.path.startswith("/media/"):
            return None  # media URLs are pre-signed
        if request.path.startswith("/partner/"):
            if request.headers.get("authorization") != self.app_token:
                return Reply(401, {"status": "error", "message": "Invalid Token"})
            return None
        if request.headers.get("apikey") != self.api_key:
            return Reply(401, fixture("gupshup", "api_auth_failed"))
        return None

    def _send(self, request: Recorded, match: re.Match[str]) -> Reply:
        answer = fixture("gupshup", "api_send_submitted")
        answer["messageId"] = str(uuid.UUID(int=next(self._ids)))
        self.sent_ids.append(answer["messageId"])
        return Reply(202, answer)

    def _event(self, request: Recorded, match: re.Match[str]) -> Reply:
        try:
            event = json.loads(request.body)
        except ValueError:
            return Reply(400, {"status": "error", "message": "Invalid JSON payload"})
        message = event.get("message") if isinstance(event, dict) else None
        if (event.get("type") != "message-event" or not isinstance(message, dict)
                or message.get("status") != "read" or message.get("messaging_product") != "whatsapp"
                or not message.get("message_id")):
            return Reply(400, {"status": "error", "message": "Outbound event not supported"})
        self.read_receipts.append(str(message["message_id"]))
        return Reply(200, {"status": "success"})

    def _media(self, request: Recorded, match: re.Match[str]) -> Reply:
        if match["name"] not in self.media:
            return Reply(404, {"status": "error", "message": "Not found"})
        content, mime = self.media[match["name"]]
        return Reply(200, content, {"Content-Type": mime})
