"""The Meta Graph API, as far as Conversa uses it: sends, media, templates, phone number."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from typing import Any

from .server import FakeServer, Recorded, Reply, fixture

VERSION = "v21.0"
USER_ID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")


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
        self.read_receipts: list[str] = []  # message ids marked read ({"status": "read"})
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
        problem = self.invalid_send(body)
        if problem:
            return Reply(400, {"error": {"message": f"(#100) Invalid parameter: {problem}", "type": "OAuthException",
                                         "code": 100, "fbtrace_id": "AfakeTrace"}})
        if body.get("status") == "read":
            self.read_receipts.append(str(body.get("message_id")))
            return Reply(200, {"success": True})
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

    @staticmethod
    def invalid_send(body: dict[str, Any]) -> str:
        """What Meta refuses in a send body (as documented): "" when it would be accepted."""
        if body.get("messaging_product") != "whatsapp":
            return "messaging_product must be whatsapp"
        if body.get("status") == "read":
            return "" if body.get("message_id") else "message_id is required"
        recipient = body.get("recipient")
        if not body.get("to") and not recipient:
            return "to or recipient is required"
        if recipient is not None and not USER_ID.match(str(recipient)):
            return "recipient must be a business-scoped user id"
        kind = str(body.get("type") or "text")
        content = body.get(kind)
        if not isinstance(content, dict):
            return f"{kind} object is required"
        if kind == "text" and "preview_url" in content and not isinstance(content["preview_url"], bool):
            return "text.preview_url must be a boolean"
        for component in content.get("components", []) if kind == "template" else []:
            named = [("parameter_name" in p) for p in component.get("parameters", []) if p.get("type") == "text"]
            if component.get("type") == "body" and named and any(named) != all(named):
                return "body parameters are either all named or all positional"
            if component.get("type") == "button" and component.get("sub_type") not in ("url", "quick_reply"):
                return "button sub_type must be url or quick_reply"
            if component.get("type") == "header":
                [parameter] = component.get("parameters") or [{}]
                media_type = parameter.get("type")
                if media_type not in ("image", "video", "document") or "link" not in parameter.get(media_type, {}):
                    return "header parameter must be an image, video or document with a link"
        return ""

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
