"""A local HTTP server standing in for the sandbox provider's relay endpoint (`api_url`):
it records what we send and answers with whatever the test scripts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Relay:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        # Each reply: (status, body). The last one repeats when the script runs out.
        self.replies: list[tuple[int, dict[str, Any]]] = [(200, {"id": "relay-1"})]
        self.url = ""

    def next_reply(self) -> tuple[int, dict[str, Any]]:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@contextmanager
def relay_server() -> Iterator[Relay]:
    relay = Relay()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            relay.received.append(json.loads(self.rfile.read(length)))
            status, body = relay.next_reply()
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    relay.url = f"http://127.0.0.1:{server.server_address[1]}/messages"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        server.shutdown()
        server.server_close()
