"""Websocket test harness.

The consumers run on a real event loop in a background thread, registered as the "server loop"
exactly as the ASGI lifespan does in production, so publish() from the test's (sync) thread
reaches the channel layer the same way a request thread or the embedded worker does. Sync test
code drives sockets through `Socket`, whose calls run on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.test import Client

from conversa.realtime import services
from conversa.realtime.routing import websocket_application

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres_only") and connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL + Redis (set DATABASE_URL and REDIS_URL; CI runs it there)")


@pytest.fixture(autouse=True)
def _private_channel_layer(settings: Any) -> None:
    """On Redis, a key prefix of our own: other test runs sharing the server cannot cross-talk."""
    layers = django_settings.CHANNEL_LAYERS
    if layers["default"]["BACKEND"].startswith("channels_redis."):
        config = {**layers["default"]["CONFIG"], "prefix": f"test-{uuid.uuid4().hex[:12]}"}
        settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": config}}


class WebsocketCommunicator(ApplicationCommunicator):  # type: ignore[misc]
    """channels.testing.WebsocketCommunicator's protocol, minus its import of daphne (channels'
    testing package pulls in daphne for its live-server case; daphne is not a dependency here)."""

    def __init__(self, application: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        parsed = urlparse(path)
        super().__init__(application, {"type": "websocket", "path": unquote(parsed.path),
                                        "query_string": parsed.query.encode(), "headers": headers,
                                        "subprotocols": []})

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept", response
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str) -> None:
        await self.send_input({"type": "websocket.receive", "text": text_data})

    async def receive_from(self, timeout: float = 1) -> str:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return str(response["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


class ServerLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @staticmethod
    async def _cancel_leftovers() -> None:
        """Consumers a failed test left running (their sockets never disconnected)."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a consumer blocked in a Redis read can ignore cancellation for a long time
            # (the redis-py hang noted in docs/operations.md); the loop is discarded anyway.
            await asyncio.wait(tasks, timeout=5)

    def stop(self) -> None:
        # The consumers' ORM calls ran in asgiref's single sync thread: close its connections, or
        # PostgreSQL refuses to drop the test database at the end.
        self.run(sync_to_async(connections.close_all, thread_sensitive=True)())
        self.run(self._cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


@pytest.fixture
def server_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerLoop]:
    loop = ServerLoop()
    monkeypatch.setattr(services, "_server_loop", loop.loop)
    try:
        yield loop
    finally:
        loop.stop()


class Socket:
    """A WebsocketCommunicator driven from sync test code. Every wait has a deadline."""

    def __init__(self, loop: ServerLoop, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.loop = loop

        async def make() -> WebsocketCommunicator:
            return WebsocketCommunicator(websocket_application, path, headers=headers)

        self.comm = loop.run(make())
        self.connected = False

    def connect(self) -> tuple[bool, Any]:
        result = self.loop.run(self.comm.connect(timeout=10))
        self.connected = bool(result[0])
        return result

    def close_code(self) -> int | None:
        output = self.loop.run(self.comm.receive_output(timeout=10))
        assert output["type"] == "websocket.close", output
        self.connected = False
        return output.get("code")

    def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = self.receive_raw(timeout)
        assert isinstance(frame, dict)
        return frame

    def receive_raw(self, timeout: float = 10) -> Any:
        """The next text frame, decoded: a frame, or (?frames=batch) a list of frames."""
        return json.loads(self.loop.run(self.comm.receive_from(timeout=timeout), timeout=timeout + 5))

    def send(self, data: dict[str, Any]) -> None:
        self.loop.run(self.comm.send_to(text_data=json.dumps(data)))

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float = 10) -> list[dict[str, Any]]:
        """Frames received up to and including the first one for which `done` is true."""
        frames: list[dict[str, Any]] = []
        while True:
            frames.append(self.receive(timeout))
            if done(frames[-1]):
                return frames

    def until_barrier(self, barrier_id: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Frames before the barrier event (excluded): the channel layer keeps per-socket order,
        so anything sent before the barrier has arrived once the barrier has."""
        return self.until(lambda f: f.get("id") == barrier_id, timeout)[:-1]

    def disconnect(self) -> None:
        if self.connected:
            self.loop.run(self.comm.disconnect(timeout=10))
            self.connected = False


def session_cookie(username: str) -> bytes:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
def open_socket(server_loop: ServerLoop) -> Iterator[Callable[..., Socket]]:
    """open_socket("agent1", last_event_id=N) → a connected /ws/agent/ socket, after its hello.
    open_socket(None, path=..., connect=False) for raw handshakes."""
    sockets: list[Socket] = []

    def open_(username: str | None, *, path: str = "/ws/agent/", last_event_id: int | None = None,
              origin: str | None = "http://testserver", connect: bool = True, hello: bool = True,
              headers: list[tuple[bytes, bytes]] | None = None) -> Socket:
        headers = list(headers or [])
        if origin:
            headers.append((b"origin", origin.encode()))
        if username is not None:
            headers.append((b"cookie", session_cookie(username)))
        if last_event_id is not None:
            path += f"{'&' if '?' in path else '?'}last_event_id={last_event_id}"
        socket = Socket(server_loop, path, headers)
        sockets.append(socket)
        if connect:
            connected, _ = socket.connect()
            assert connected
            if hello:
                first = socket.receive()
                assert first["event"] == "hello", first
                socket.hello = first  # type: ignore[attr-defined]
        return socket

    try:
        yield open_
    finally:
        for socket in sockets:
            # A failed test may have left it half-closed; teardown goes on.
            with contextlib.suppress(Exception):
                socket.disconnect()


def publish_barrier(*groups: str, event_type: str = "test.barrier") -> int:
    """Publish a marker event to `groups` through the real publish path; returns its id."""
    with transaction.atomic():
        return services.publish(event_type, {}, groups).pk


@pytest.fixture
def barrier(server_loop: ServerLoop) -> Callable[..., int]:
    return publish_barrier
