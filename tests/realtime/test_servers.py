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
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect

from conversa.realtime.stream import current_event_id

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEADLINE = 30.0
IDLE = 6.5  # longer than channels_redis's 5 s blocking pop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_env() -> dict[str, str]:
    """Point a subprocess at the database this test runs on."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        url = (f"postgres://{quote(db['USER'] or '')}:{quote(str(db['PASSWORD'] or ''))}"
               f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
        return {"DATABASE_URL": url}
    assert connection.vendor == "sqlite"
    return {"SQLITE_PATH": str(db["NAME"])}


class Launcher:
    """Starts subprocesses, each in its own session, and kills every one of them at teardown."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "CONVERSA_EMBEDDED_WORKER"}}
        env.update(database_env())
        env.update({"SECRET_KEY": "realtime-test-secret", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
        env.update(extra)
        return env

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def uvicorn(self, name: str, env: dict[str, str]) -> int:
        port = free_port()
        self.start(name, [str(BIN / "uvicorn"), "conversa.asgi:application", "--app-dir", "src",
                          "--host", "127.0.0.1", "--port", str(port), "--no-access-log"], env)
        self.wait_http(name, f"http://127.0.0.1:{port}/api/schema/")
        return port

    def worker(self, env: dict[str, str]) -> None:
        self.start("worker", [str(BIN / "python"), "manage.py", "conversa_worker", "--interval", "0.1"], env)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def wait_http(self, name: str, url: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
        pytest.fail(f"{name} did not answer {url} within {DEADLINE}s:\n{self.log(name)}")

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.stop_all()


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
