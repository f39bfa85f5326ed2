"""The Meta Graph API, as far as Conversa uses it: sends, media, templates, phone number."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter

from .server import FakeServer, Recorded, Reply, fixture

VERSION = "v21.0"


class MetaFake(FakeServer):
    def __init__(self, *, access_token: str, phone_number_id: str, waba_id: str) -> None:
        super().__init__()
        self.access_token = access_token
        self.media: dict[str, tuple[bytes, str]] = {}  # media id → (bytes, mime)
        self._ids = itertools.count(1)
        self.sent_ids: list[str] = []
        # Every send the fake accepted (gave a wamid), whatever happened to the answer afterwards:
        # what the customer would have received. (wamid, biz_opaque_callback_data, body)
        self.accepted: list[tuple[str, str, dict[str, object]]] = []
        # What happens to the answers of the next accepted sends, in order: "timeout" (answer after
        # `answer_delay` s, when the client has given up) or "drop" (close without answering).
        self.after_accepting: list[str] = []
        self.answer_delay = 3.0
        self._accept_lock = threading.Lock()
        v = re.escape(VERSION)
        self.route("POST", rf"/{v}/{phone_number_id}/messages", self._send)
        self.route("GET", rf"/{v}/{waba_id}/message_templates", self._templates)
        self.route("GET", rf"/{v}/{phone_number_id}", lambda r, m: Reply(200, fixture("meta", "api_phone_number")))
        self.route("GET", r"/lookaside/(?P<media_id>\w+)", self._media_bytes)
        self.route("GET", rf"/{v}/(?P<media_id>\d+)", self._media_url)

    def authorize(self, request: Recorded) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return Reply(401, fixture("meta", "api_error_190"))
        return None

    def _send(self, request: Recorded, match: re.Match[str]) -> Reply:
        body = request.json()
        name = "api_send_template_success" if body.get("type") == "template" else "api_send_success"
        answer = fixture("meta", name)
        wamid = f"wamid.FAKE{next(self._ids):04d}"
        answer["messages"][0]["id"] = wamid
        answer["contacts"][0].update(input=body.get("to"), wa_id=body.get("to"))
        with self._accept_lock:
            self.sent_ids.append(wamid)
            self.accepted.append((wamid, str(body.get("biz_opaque_callback_data") or ""), body))
            fate = self.after_accepting.pop(0) if self.after_accepting else ""
        return Reply(200, answer, delay=self.answer_delay if fate == "timeout" else 0.0, drop=fate == "drop")

    def accepted_per_reference(self) -> Counter[str]:
        """How many times each of our message references reached the provider."""
        with self._accept_lock:
            return Counter(reference for _, reference, _ in self.accepted)

    def _media_url(self, request: Recorded, match: re.Match[str]) -> Reply:
        media_id = match["media_id"]
        if media_id not in self.media:
            return Reply(404, {"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                                         "code": 100, "error_subcode": 33}})
        answer = fixture("meta", "api_media_url", media_url=f"{self.url}/lookaside/{media_id}")
        answer.update(id=media_id, mime_type=self.media[media_id][1])
        return Reply(200, answer)

    def _media_bytes(self, request: Recorded, match: re.Match[str]) -> Reply:
        content, mime = self.media[match["media_id"]]
        return Reply(200, content, {"Content-Type": mime})

    def _templates(self, request: Recorded, match: re.Match[str]) -> Reply:
        if request.query.get("after") == "QVFIUjRm":
            return Reply(200, fixture("meta", "api_templates_page2"))
        next_url = f"{self.url}{request.path}?limit=100&after=QVFIUjRm"
        return Reply(200, fixture("meta", "api_templates_page1", next_url=next_url))
