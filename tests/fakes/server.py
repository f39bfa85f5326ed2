"""A real HTTP server on 127.0.0.1 (ephemeral port) standing in for a provider's API.

It records every request and answers from routes (vendor behaviour, see meta.py / gupshup.py)
unless a test scripted one-shot replies first (errors, rate limits, outages).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_text(vendor: str, name: str, **subs: str) -> str:
    """A recorded payload shape from tests/fixtures/<vendor>/<name>.json, with `{key}`
    placeholders (ids, URLs of the fake) filled in."""
    text = (FIXTURES / vendor / f"{name}.json").read_text()
    for key, value in subs.items():
        text = text.replace("{" + key + "}", value)
    return text


def fixture(vendor: str, name: str, **subs: str) -> Any:
    return json.loads(fixture_text(vendor, name, **subs))


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes → raw
    headers: dict[str, str] = field(default_factory=dict)
    # What a flaky network does after the server acted on the request: answer only after this many
    # seconds (the client has timed out by then), or close the connection without answering.
    delay: float = 0.0
    drop: bool = False


Handler = Callable[[Recorded, "re.Match[str]"], Reply]


class _Server(ThreadingHTTPServer):
    # Room for many clients connecting at once (a bulk send's calls in flight): the default backlog
    # of 5 drops connections under a burst, which the client sees as resets and one-second stalls.
    request_queue_size = 256
    daemon_threads = True


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._scripts: list[tuple[str, re.Pattern[str], list[Reply]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- configuration ---------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def script(self, method: str, pattern: str, *replies: Reply) -> None:
        """The next requests matching get these replies, in order, before the normal route."""
        with self._lock:
            self._scripts.append((method, re.compile(pattern + r"\Z"), list(replies)))

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        regex = re.compile(pattern + r"\Z")
        with self._lock:
            return [r for r in self.requests if r.method == method and regex.match(r.path)]

    def authorize(self, request: Recorded) -> Reply | None:
        """Vendor auth check: a Reply refuses the request, None lets it through."""
        return None

    # --- serving -------------------------------------------------------------------------
    def _dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            for method, regex, replies in self._scripts:
                if method == request.method and regex.match(request.path) and replies:
                    return replies.pop(0)
        refused = self.authorize(request)
        if refused is not None:
            return refused
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if method == request.method and match:
                return handler(request, match)
        return Reply(404, {"error": f"fake has no route for {request.method} {request.path}"})

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Recorded(
                    method=self.command, path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = fake._dispatch(request)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.delay:
                    time.sleep(reply.delay)  # a slow answer is the behaviour being faked
                if isinstance(reply.body, bytes):
                    data, ctype = reply.body, "application/octet-stream"
                else:
                    data, ctype = json.dumps(reply.body).encode(), "application/json"
                self.send_response(reply.status)
                headers = {"Content-Type": ctype, **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have given up waiting
                    self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), RequestHandler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
