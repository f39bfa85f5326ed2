"""Chaos harness: a throwaway PostgreSQL cluster of our own (initdb into a temp dir, a free port,
pg_ctl), so restarting it disturbs neither the other tests nor anyone else's server; real
`manage.py conversa_worker` and uvicorn subprocesses pointed at a fresh database per test.

Runs in the PostgreSQL phase only (the `postgres_only` marker, as in tests/realtime): the suite's
own database must be PostgreSQL for the binaries to be there (.ci/services.sh installs them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from django.db import connection
from tests.servers import REPO, Processes, free_port, local_url

BIN = Path(sys.executable).parent
T = TypeVar("T")
_databases = itertools.count(1)


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres_only") and connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")


def poll(what: str, check: Callable[[], T | None], *, deadline: float = 90.0,
         alive: Callable[[], None] | None = None) -> T:
    """check() until it returns something truthy, failing with `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        if alive is not None:
            alive()
        try:
            last = check()
        except (psycopg.OperationalError, httpx.TransportError) as exc:
            last = exc  # the server is restarting: keep polling
        else:
            if last:
                return last
        time.sleep(0.1)  # polling other processes: nothing to wait on but their effects
    pytest.fail(f"timed out after {deadline}s waiting for {what} (last: {last!r})")


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    """One PostgreSQL server in a temp dir; `template` holds the migrated demo data."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        if not found:
            pytest.fail("PostgreSQL binaries not found under /usr/lib/postgresql (bash .ci/services.sh installs them)")
        self.bin = found[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="conversa-chaos-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(_as_postgres([str(self.bin / args[0]), *args[1:]]), capture_output=True, timeout=60)
        if done.returncode:
            pytest.fail(f"{args[0]} failed: {done.stdout.decode()} {done.stderr.decode()}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(["pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log.txt"), "-w", "start"])

    def stop(self) -> None:
        self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql(self, database: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=3) as conn:
            cursor = conn.execute(query, params)  # type: ignore[call-overload]
            return cursor.fetchall() if cursor.description else []

    def connect(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(database), connect_timeout=3)

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")
    cluster = Cluster()
    try:
        cluster.start()
        cluster.sql("postgres", "CREATE DATABASE template_chaos")
        env = {**base_env(), "DATABASE_URL": cluster.url("template_chaos")}
        for command in (["migrate", "--noinput", "-v0"], ["load_demo"]):
            done = subprocess.run([str(BIN / "python"), "manage.py", *command], cwd=REPO, env=env,
                                  capture_output=True, timeout=240)
            if done.returncode:
                pytest.fail(f"manage.py {command[0]} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")
        yield cluster
    finally:
        cluster.remove()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "CONVERSA_TEST_DB_NAME"}}
    env.update({"CONVERSA_EMBEDDED_WORKER": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING", "CONVERSA_HEALTH_REQUIRE_WORKER": "1",
                # Fast housekeeping, so dead workers and overdue events show within seconds.
                "CONVERSA_WORKER_HEARTBEAT_EVERY": "0.5", "CONVERSA_WORKER_STALE_AFTER": "3",
                "CONVERSA_SWEEP_EVERY": "0.5", "CONVERSA_WEBHOOK_SWEEP_AFTER": "1"})
    return env


class Deployment(Processes):
    """A fresh database (copy of the template) and the processes a test starts against it; a worker
    the test kills with SIGKILL is no failure of check_alive."""

    def __init__(self, cluster: Cluster, logs: Path) -> None:
        super().__init__(logs, log_tail=6000, killed_ok=True)
        self.cluster = cluster
        self.database = f"chaos_{os.getpid()}_{next(_databases)}"
        cluster.sql("postgres", f"CREATE DATABASE {self.database} TEMPLATE template_chaos")
        self.line_id = self.sql("SELECT id FROM whatsapp_line WHERE number = '+15550100001'")[0][0]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.cluster.sql(self.database, query, *params)

    def env(self, **extra: str) -> dict[str, str]:
        return {**base_env(), "DATABASE_URL": self.cluster.url(self.database), **extra}

    def worker(self, name: str, *args: str, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
        """A `manage.py conversa_worker` process, once it said it started; and its worker id."""
        proc = self.start(name, [str(BIN / "python"), "manage.py", "conversa_worker", "--interval", "0.1", *args],
                          env=self.env(**extra))

        def started() -> str | None:
            for line in self.log(name).splitlines():
                if line.startswith("conversa worker ") and line.endswith(" started"):
                    return line.split()[2]
            return None

        return proc, poll(f"{name} to start", started, alive=self.check_alive)

    def web(self, **extra: str) -> str:
        url = local_url(self.start_uvicorn("web", env=self.env(**extra)))
        self.wait_http("the web server", f"{url}/api/schema/", deadline=30.0, timeout=5.0)
        return url

    def post_webhook(self, url: str, n: int) -> None:
        payload = {"id": f"chaos-{n}", "from": f"+54911555{n:05d}", "name": "Ana", "text": f"mensaje {n}"}
        response = httpx.post(f"{url}/webhooks/sandbox/{self.line_id}/", json=payload, timeout=10)
        assert response.status_code == 200, response.text

    def unprocessed(self) -> int:
        return int(self.sql("SELECT count(*) FROM whatsapp_webhookevent WHERE processed_at IS NULL")[0][0])


@pytest.fixture
def deployment(cluster: Cluster, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(cluster, tmp_path)
    try:
        with deployment:
            yield deployment
    finally:
        with contextlib.suppress(psycopg.OperationalError):  # the cluster goes with the session anyway
            cluster.sql("postgres", f"DROP DATABASE IF EXISTS {deployment.database} WITH (FORCE)")


class RedisServer:
    """A redis-server of the test's own on a free port, without persistence (as a channel layer's
    Redis usually runs): a restart loses every key, group memberships and queued messages included."""

    def __init__(self, logs: Path) -> None:
        found = shutil.which("redis-server")
        if found is None:
            pytest.fail("redis-server not found (bash .ci/services.sh installs it)")
        self.binary = found
        self.logs = logs
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.logs / "redis.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.logs)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        poll("redis-server to answer", self._pong, deadline=10)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
