"""No live event stays missing across a Redis restart (issue 8 item 9): the production shape (an
ASGI server and a task worker on a Redis of the test's own), websocket clients that reconnect
the way the console does (`?last_event_id=` the highest id seen), Redis restarted while they
listen, and events published by the worker right after the restart, while its pooled connection
is stale, and later. Every event id must reach every socket that may see it: the web process's
Redis subscription (one per process, decisions #43) reconnects by itself, and its log re-read
delivers what was published while it was away.

The worker reaches Redis through a proxy that, like a NAT, a load balancer or a container restart,
leaves its clients' old connections open but dead: the pool keeps a connection that looks idle and
fine and fails on first use (the production incident: a send failed 27 s after the sockets had
reconnected, and the event never reached them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError
from tests.chaos.conftest import Deployment, RedisServer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, WebSocketException

pytestmark = pytest.mark.postgres_only
DEADLINE = 45.0


class StaleProxy:
    """TCP forwarder to Redis. After `go_stale()` the connections it had keep their client side
    open but forward nothing, and the next bytes a client sends on one are answered with a reset."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.generation = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def go_stale(self) -> None:
        self.generation += 1

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            generation = self.generation
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pump, args=(client, upstream, generation, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, generation, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, generation: int, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if generation != self.generation:
                if from_client:  # a stale connection used: reset it, as the far end would
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    source.close()
                return  # from Redis: the old server went away; the client is not told
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return


@pytest.fixture
def stale_proxy(redis_server: RedisServer) -> Iterator[StaleProxy]:
    proxy = StaleProxy(redis_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


class Listener:
    """One socket, reconnecting like console.js: after a close it comes back with the highest event
    id it saw. `group` is the channel-layer group through which it sees every event sent there."""

    def __init__(self, url: str, group: str, origin: str | None = None) -> None:
        self.url = url
        self.group = group
        self.origin = origin
        self.ids: set[int] = set()
        self.last: int | None = None
        self.connects = 0
        self.refetches: list[dict[str, object]] = []

    async def run(self) -> None:
        while True:
            separator = "&" if "?" in self.url else "?"
            query = f"{separator}last_event_id={self.last}" if self.last is not None else ""
            with contextlib.suppress(OSError, WebSocketException, InvalidHandshake):
                async with connect(self.url + query, open_timeout=5, origin=self.origin) as ws:  # type: ignore[arg-type]
                    async for raw in ws:
                        self._receive(json.loads(raw))
            await asyncio.sleep(0.2)  # the console's reconnect back-off, not synchronisation

    def _receive(self, frame: dict[str, object]) -> None:
        if frame["event"] == "hello":
            self.connects += 1
            if self.last is None:
                self.last = int(frame["payload"]["last_event_id"])  # type: ignore[index]
        elif frame["event"] == "refetch":
            self.refetches.append(frame)
        elif isinstance(frame.get("id"), int):
            event_id = int(frame["id"])  # type: ignore[call-overload]
            self.ids.add(event_id)
            self.last = max(self.last or 0, event_id)


async def wait_for(what: str, check: Callable[[], object], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        await asyncio.sleep(0.1)  # polling other processes' effects
    raise AssertionError(f"timed out after {deadline}s waiting for {what}")


def test_every_event_reaches_every_socket_across_a_redis_restart(deployment: Deployment,
                                                                  redis_server: RedisServer,
                                                                  stale_proxy: StaleProxy):
    layer = {"CHANNEL_LAYER_PREFIX": "chaos", "SECRET_KEY": "chaos-live-events", "CONVERSA_EVENT_RECHECK_EVERY": "2"}
    web = deployment.web(REDIS_URL=redis_server.url, **layer)
    # The publisher: processes the webhooks and publishes their events, through the proxy.
    deployment.worker("worker", REDIS_URL=f"redis://127.0.0.1:{stale_proxy.port}/0", **layer)
    ws_base = web.replace("http://", "ws://")
    line = deployment.line_id
    campaign = deployment.sql("SELECT campaign_id FROM whatsapp_line WHERE id = %s", line)[0][0]

    def token(username: str) -> str:
        response = httpx.post(f"{web}/api/v1/auth/token/", data={"username": username, "password": "demo"},
                              timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    admin, agent = token("admin"), token("agent1")
    listeners = [
        Listener(f"{ws_base}/ws/agent/?token={admin}", "supervisors"),
        Listener(f"{ws_base}/ws/agent/?token={admin}", "supervisors"),
        Listener(f"{ws_base}/ws/agent/?token={agent}", f"campaign-{campaign}"),
        Listener(f"{ws_base}/ws/sandbox/{line}/", f"line-{line}", origin=web),
    ]

    def subscribers(group: str) -> int:
        """Subscriptions to `group` in Redis (the pub/sub channel layer: one per web process)."""
        name = f"chaos__group__{group}"
        try:
            with Redis(port=redis_server.port, socket_timeout=2) as redis:
                return int(dict(redis.pubsub_numsub(name))[name.encode()])
        except RedisError:
            return -1  # restarting

    def sent_to(group: str) -> set[int]:
        return {row[0] for row in deployment.sql(
            "SELECT event_id FROM realtime_eventtarget WHERE \"group\" = %s", group)}

    def all_delivered() -> bool:
        return all(sent_to(listener.group) <= listener.ids for listener in listeners)

    def processed(count: int) -> bool:
        deployment.check_alive()
        return deployment.unprocessed() == 0 and deployment.sql(
            "SELECT count(*) FROM whatsapp_webhookevent")[0][0] == count

    async def post(numbers: range) -> None:
        for n in numbers:
            await asyncio.to_thread(deployment.post_webhook, web, n)

    async def scenario() -> None:
        tasks = [asyncio.create_task(listener.run()) for listener in listeners]
        try:
            await wait_for("every socket's hello", lambda: all(lst.connects for lst in listeners))
            await post(range(5))
            await wait_for("the first events on every socket", lambda: processed(5) and all_delivered())

            assert subscribers(f"campaign-{campaign}") == 1  # one subscription for the process's sockets
            stale_proxy.go_stale()
            redis_server.restart()
            # The web process's subscription reconnects by itself (its sockets stay open); what was
            # published while it was away comes from the log re-read.
            await wait_for("the web process subscribed again",
                           lambda: all(subscribers(lst.group) == 1 for lst in listeners))
            # The worker's first sends after the restart take its stale pooled connection.
            await post(range(5, 10))
            await wait_for("the webhooks posted after the restart processed", lambda: processed(10))
            await post(range(10, 15))
            await wait_for("the later webhooks processed", lambda: processed(15))

            for listener in listeners:
                assert len(sent_to(listener.group)) >= 15, listener.group  # a message event per webhook
            try:
                await wait_for("every event on every socket", all_delivered)
            except AssertionError as exc:
                missing = {lst.group: sorted(sent_to(lst.group) - lst.ids) for lst in listeners}
                raise AssertionError(f"{exc}; missing: {missing}\n--- worker\n{deployment.log('worker')}") from exc
            assert [lst.refetches for lst in listeners] == [[]] * len(listeners)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
