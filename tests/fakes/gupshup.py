"""GupShup's self-serve WhatsApp API, as far as Conversa uses it: sends, templates, media."""

from __future__ import annotations

import itertools
import re
import uuid

from .server import FakeServer, Recorded, Reply, fixture


class GupshupFake(FakeServer):
    def __init__(self, *, api_key: str, app_id: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.media: dict[str, tuple[bytes, str]] = {}  # file name under /media/ → (bytes, mime)
        self.sent_ids: list[str] = []
        self._ids = itertools.count(1)
        self.route("POST", r"/wa/api/v1/msg", self._send)
        self.route("POST", r"/wa/api/v1/template/msg", self._send)
        self.route("GET", rf"/wa/app/{re.escape(app_id)}/template",
                   lambda r, m: Reply(200, fixture("gupshup", "api_templates")))
        self.route("GET", r"/media/(?P<name>[\w.-]+)", self._media)

    def authorize(self, request: Recorded) -> Reply | None:
        if request.path.startswith("/media/"):
            return None  # media URLs are pre-signed
        if request.headers.get("apikey") != self.api_key:
            return Reply(401, fixture("gupshup", "api_auth_failed"))
        return None

    def _send(self, request: Recorded, match: re.Match[str]) -> Reply:
        answer = fixture("gupshup", "api_send_submitted")
        answer["messageId"] = str(uuid.UUID(int=next(self._ids)))
        self.sent_ids.append(answer["messageId"])
        return Reply(202, answer)

    def _media(self, request: Recorded, match: re.Match[str]) -> Reply:
        if match["name"] not in self.media:
            return Reply(404, {"status": "error", "message": "Not found"})
        content, mime = self.media[match["name"]]
        return Reply(200, content, {"Content-Type": mime})
