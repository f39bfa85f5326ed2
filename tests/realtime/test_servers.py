"""Real servers, real sockets: uvicorn subprocesses and the `websockets` client.

- Embedded mode: one uvicorn process with the in-memory channel layer and the task worker as a
  thread inside it (what `make run` does).
- Production mode: two uvicorn processes and a separate `manage.py conversa_worker`, sharing
  PostgreSQL and Redis. A webhook posted to process A, processed by the worker, reaches a socket
  connected to process B.

The subprocesses use the test database pytest-django created (the autouse fixture commits the
demo data, so they see it); they are killed before the test's database teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import override_settings
from redis import Redis
from tests.servers import Processes, local_url, server_env
from websockets.asyncio.client import ClientConnection, connect

from conversa.campaigns.models import Campaign
from conversa.realtime.consumers import OUTBOX_LIMIT
from conversa.realtime.groups import agent_group, campaign_group
from conversa.realtime.models import EventTarget
from conversa.realtime.services import publish
from conversa.realtime.stream import current_event_id

BIN = Path(sys.executable).parent
DEADLINE = 30.0
IDLE = 6.5  # longer than channels_redis's 5 s blocking pop


class Launcher(Processes):
    """Web and worker processes on the test database, each in its own session; all stopped at teardown."""

    def env(self, **extra: str) -> dict[str, str]:
        return server_env(**{"SECRET_KEY": "realtime-test-secret", **extra})

    def uvicorn(self, name: str, env: dict[str, str]) -> int:
        port = self.start_uvicorn(name, env=env)
        self.wait_http(name, f"{local_url(port)}/api/schema/", deadline=DEADLINE, ready=lambda status: status < 500)
        return port

    def worker(self, env: dict[str, str]) -> None:
        self.start("worker", [str(BIN / "python"), "manage.py", "conversa_worker", "--interval", "0.1"], env=env)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    with Launcher(tmp_path, log_tail=4000) as launcher:
        yield launcher


def token_for(port: int, username: str) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token/",
                          data={"username": username, "password": "demo"}, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def next_frame(ws: ClientConnection, event: str, timeout: float = DEADLINE) -> dict[str, Any]:
    """The first frame of type `event`, failing after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no {event} within {timeout}s")
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        except TimeoutError:
            raise AssertionError(f"no {event} within {timeout}s") from None
        if frame["event"] == event:
            return dict(frame)


async def stays_quiet(ws: ClientConnection) -> None:
    """Nothing arrives for IDLE seconds, and the socket is still open afterwards."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), IDLE)


async def post_webhook(port: int, line_id: int, phone: str, text: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://127.0.0.1:{port}/webhooks/sandbox/{line_id}/", json={
            "id": f"sbx-{uuid.uuid4().hex}", "from": phone, "name": "Ana", "text": text}, timeout=10)
    assert response.status_code == 200, response.text


def test_embedded_mode_one_process_delivers_to_agent_and_simulator(demo, launcher):
    """`make run`'s shape: in-memory layer, the worker a thread of the web process."""
    env = launcher.env(CONVERSA_EMBEDDED_WORKER="1", CONVERSA_WORKER_INTERVAL="0.1")
    port = launcher.uvicorn("web", env)
    token = token_for(port, "agent1")
    line_id = demo["sales_line"].pk
    origin = f"http://127.0.0.1:{port}"
    last_event_id = current_event_id()  # nothing is published before the webhook below

    async def scenario() -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws/agent/?token={token}") as agent, \
                connect(f"ws://127.0.0.1:{port}/ws/sandbox/{line_id}/", origin=origin) as simulator:  # type: ignore[arg-type]
            assert (await next_frame(agent, "hello"))["payload"]["last_event_id"] == last_event_id
            await next_frame(simulator, "hello")
            await post_webhook(port, line_id, "+5491155550101", "Hola desde el simulador")
            created = await next_frame(agent, "conversation.created")
            assert created["payload"]["conversation"]["customer_phone"] == "+5491155550101"
            message = await next_frame(simulator, "message.created")
            assert message["payload"]["message"]["body"] == "Hola desde el simulador"

    asyncio.run(scenario())


@pytest.mark.postgres_only
def test_production_mode_event_crosses_processes_through_redis(demo, launcher):
    """Two ASGI processes + a task worker on PostgreSQL and Redis: the webhook lands on A, the
    worker processes it, the agents connected to B (and to A) see it."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.fail("production-mode test runs on PostgreSQL with Redis: set REDIS_URL "
                    "(bash .ci/services.sh starts both; REDIS_URL=redis://127.0.0.1:63799/0)")
    env = launcher.env(REDIS_URL=redis_url, CONVERSA_EMBEDDED_WORKER="0",
                       CHANNEL_LAYER_PREFIX=f"test-{uuid.uuid4().hex[:12]}")
    port_a = launcher.uvicorn("web-a", env)
    port_b = launcher.uvicorn("web-b", env)
    launcher.worker(env)
    agent1, agent2 = token_for(port_a, "agent1"), token_for(port_b, "agent2")
    line_id = demo["sales_line"].pk

    async def scenario() -> None:
        async with connect(f"ws://127.0.0.1:{port_b}/ws/agent/?token={agent1}") as on_b, \
                connect(f"ws://127.0.0.1:{port_a}/ws/agent/",
                        additional_headers={"Authorization": f"Token {agent2}"}) as on_a:
            await next_frame(on_b, "hello")
            await next_frame(on_a, "hello")
            # Idle past channels_redis's 5 s blocking pop: the sockets must stay open and quiet
            # (with redis-py 8's default socket_timeout their consumers crashed right here).
            await asyncio.gather(stays_quiet(on_b), stays_quiet(on_a))
            await post_webhook(port_a, line_id, "+5491155550102", "Hola producción")
            for ws in (on_b, on_a):
                created = await next_frame(ws, "conversation.created")
                assert created["payload"]["conversation"]["customer_phone"] == "+5491155550102"
                message = await next_frame(ws, "message.created")
                assert message["payload"]["message"]["body"] == "Hola producción"

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        launcher.check_alive()
        logs = "\n".join(f"--- {name}\n{launcher.log(name)}" for name, _ in launcher.procs)
        raise AssertionError(f"{exc}\n{logs}") from exc


@pytest.mark.postgres_only
def test_hundred_sockets_on_two_processes_get_every_event_once_through_one_subscription_each(demo, launcher):
    """Fan-out once per process (decisions #43): 100 sockets over two ASGI processes, each process
    one Redis subscription per group; every socket gets every event of its campaign exactly once,
    live (the log re-read is set far out of reach, so it cannot mask a loss); once the sockets
    close, no subscription is left."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.fail("runs on PostgreSQL with Redis: set REDIS_URL (bash .ci/services.sh starts both)")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    env = launcher.env(REDIS_URL=redis_url, CONVERSA_EMBEDDED_WORKER="0", CHANNEL_LAYER_PREFIX=prefix,
                       CONVERSA_EVENT_RECHECK_EVERY="3600")
    ports = [launcher.uvicorn("web-a", env), launcher.uvicorn("web-b", env)]
    launcher.worker(env)
    agents = ("agent1", "agent2", "agent3")
    tokens = {name: token_for(ports[0], name) for name in agents}
    campaign = Campaign.objects.get(name="Sales").pk
    groups = [campaign_group(campaign), *(agent_group(get_user_model().objects.get(username=n).pk) for n in agents)]
    line_id = demo["sales_line"].pk
    phones = [f"+54911555704{n:02d}" for n in range(10)]

    def subscribers(group: str) -> int:
        name = f"{prefix}__group__{group}"
        with Redis.from_url(redis_url) as redis:
            return int(dict(redis.pubsub_numsub(name))[name.encode()])

    async def until(what: str, check: Any) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)  # polling other processes' effects

    async def listen(ws: ClientConnection, ids: list[int]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                if isinstance(frame.get("id"), int):
                    ids.append(frame["id"])

    async def scenario() -> None:
        sockets = [await connect(f"ws://127.0.0.1:{ports[n % 2]}/ws/agent/?token={tokens[agents[n % 3]]}")
                   for n in range(100)]
        try:
            hellos = [await next_frame(ws, "hello") for ws in sockets]
            start = min(h["payload"]["last_event_id"] for h in hellos)
            received: list[list[int]] = [[] for _ in sockets]
            readers = [asyncio.create_task(listen(ws, ids)) for ws, ids in zip(sockets, received, strict=True)]
            assert [subscribers(g) for g in groups] == [2, 2, 2, 2]  # one per process, not per socket

            for phone in phones:
                await post_webhook(ports[1], line_id, phone, "Hola a todos")

            def logged() -> list[int]:
                try:  # the ORM runs in a thread of its own here; its connection closed each time
                    return sorted(EventTarget.objects.filter(group=groups[0], event_id__gt=start)
                                  .values_list("event_id", flat=True))
                finally:
                    connection.close()

            deadline = asyncio.get_running_loop().time() + DEADLINE
            expected = await asyncio.to_thread(logged)
            while len(expected) < 2 * len(phones):  # a conversation and a message per webhook
                assert asyncio.get_running_loop().time() < deadline, f"webhooks not processed: {expected}"
                await asyncio.sleep(0.1)  # polling the worker's effects
                expected = await asyncio.to_thread(logged)
            await until("every event on every socket", lambda: all(len(ids) >= len(expected) for ids in received))
            for n, ids in enumerate(received):
                assert sorted(ids) == expected, f"socket {n} on port {ports[n % 2]}"
            for reader in readers:
                reader.cancel()
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        await until("no subscription left", lambda: all(subscribers(g) == 0 for g in groups))

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        launcher.check_alive()
        logs = "\n".join(f"--- {name}\n{launcher.log(name)}" for name, _ in launcher.procs)
        raise AssertionError(f"{exc}\n{logs}") from exc


@pytest.mark.postgres_only
def test_a_client_that_stops_reading_is_closed_1013_and_holds_up_nobody(demo, launcher):
    """A socket whose client stops reading gets at most OUTBOX_LIMIT frames queued in the server,
    then is closed with 1013 (it would reconnect and catch up from the log); a socket of the same
    agent on the same process, reading, gets every event meanwhile."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.fail("runs on PostgreSQL with Redis: set REDIS_URL (bash .ci/services.sh starts both)")
    env = launcher.env(REDIS_URL=redis_url, CONVERSA_EMBEDDED_WORKER="0",
                       CHANNEL_LAYER_PREFIX=f"test-{uuid.uuid4().hex[:12]}")
    # The test process publishes through the same Redis, under the server's prefix.
    settings_prefix = env["CHANNEL_LAYER_PREFIX"]
    port = launcher.uvicorn("web", env)
    token = token_for(port, "agent1")
    group = agent_group(get_user_model().objects.get(username="agent1").pk)
    # Enough 20 KB frames to fill the loopback socket buffers and then the server's queue.
    events, per_transaction = OUTBOX_LIMIT + 1500, 250
    blob = secrets.token_urlsafe(15_000)  # 20 KB that no compression shrinks

    def publish_all() -> None:
        layers = {"default": {**django_settings.CHANNEL_LAYERS["default"],
                              "CONFIG": {**django_settings.CHANNEL_LAYERS["default"]["CONFIG"],
                                         "prefix": settings_prefix}}}
        with override_settings(CHANNEL_LAYERS=layers):
            try:
                for start in range(0, events, per_transaction):
                    with transaction.atomic():
                        for n in range(start, min(events, start + per_transaction)):
                            publish("test.flood", {"n": n, "blob": blob}, [group])
            finally:
                connection.close()

    async def scenario() -> None:
        url = f"ws://127.0.0.1:{port}/ws/agent/?token={token}"
        async with connect(url, max_size=None, compression=None) as reader, \
                connect(url, max_size=None, max_queue=1, compression=None) as stalled:
            await next_frame(reader, "hello")
            await next_frame(stalled, "hello")  # and then it reads nothing until the end
            ids: set[int] = set()

            async def read_all() -> None:
                async for raw in reader:
                    if '"test.flood"' in raw:
                        ids.add(json.loads(raw)["id"])
                        if len(ids) == events:
                            return

            reading = asyncio.create_task(read_all())
            started = asyncio.get_running_loop().time()
            await asyncio.to_thread(publish_all)
            published = asyncio.get_running_loop().time() - started
            await asyncio.wait([reading], timeout=DEADLINE)
            assert len(ids) == events, f"{len(ids)} of {events} on the reading socket (published in {published:.1f}s)"
            got = 0
            try:
                while True:
                    await asyncio.wait_for(stalled.recv(), DEADLINE)
                    got += 1
            except websockets.ConnectionClosed:
                pass
            except TimeoutError:
                raise AssertionError(f"the stalled socket was not closed; it got {got} frames") from None
            assert stalled.close_code == 1013, (stalled.close_code, got)
            assert got < events

    try:
        asyncio.run(scenario())
    except AssertionError as exc:
        launcher.check_alive()
        raise AssertionError(f"{exc}\n--- web\n{launcher.log('web')}") from exc
