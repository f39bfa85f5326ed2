"""A production-shape Conversa on loopback for the benchmarks, started and stopped by them.

`Stack` starts a throwaway PostgreSQL cluster (its own data directory, default durability, the
`max_connections` asked for), a Redis server without persistence, migrates a fresh database, then
runs what `make run-prod` runs: uvicorn with several worker processes (uvloop, httptools) and
`manage.py conversa_worker` task workers. Everything listens on 127.0.0.1 only and is stopped
(process groups: SIGTERM, then SIGKILL) when the `with` block ends, also on errors or Ctrl-C.

    from harness import Stack, emit, percentiles
    with Stack(web_processes=2, task_workers=1) as stack:
        stack.manage("load_demo")
        ...
        emit({"figure": ..., "baseline": ...})
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
STOP_GRACE = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        sys.exit("PostgreSQL binaries not found under /usr/lib/postgresql (`bash .ci/services.sh` installs them)")
    return found[-1].parent


def percentiles(values: Sequence[float], *, scale: float = 1000.0, digits: int = 2) -> dict[str, float | int]:
    """p50/p95/p99/max of `values` (seconds), in milliseconds by default; count included."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale, digits)

    return {"count": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "max": round(ordered[-1] * scale, digits)}


def emit(result: dict[str, Any]) -> None:
    """The benchmark's result, as one JSON document on stdout."""
    print(json.dumps(result, indent=2, default=str), flush=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Stack:
    """PostgreSQL + Redis + uvicorn (web_processes) + task workers, all on loopback."""

    def __init__(self, *, web_processes: int = 2, task_workers: int = 1, max_connections: int = 100,
                 extra_env: dict[str, str] | None = None, name: str = "bench") -> None:
        self.web_processes = web_processes
        self.task_workers = task_workers
        self.max_connections = max_connections
        self.extra_env = dict(extra_env or {})
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"conversa-{name}-"))
        self.pg_bin = postgres_bin()
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.web_port = free_port()
        self.database = "conversa"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._workers: list[str] = []
        self._pg_started = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        try:
            self._start_postgres()
            self._start_redis()
            log("migrating")
            self.manage("migrate", "--noinput", "-v0")
            if self.web_processes:
                self.start_web()
            self.start_workers(self.task_workers)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for name in list(self._procs):
            self._stop(name)
        if self._pg_started:
            self._pg(["pg_ctl", "-D", str(self.dir / "pg"), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ servers
    def _pg(self, args: list[str], *, check: bool = True) -> None:
        done = subprocess.run(_as_postgres([str(self.pg_bin / args[0]), *args[1:]]), capture_output=True,
                              timeout=120)
        if check and done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout.decode()} {done.stderr.decode()}")

    def _start_postgres(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._pg(["initdb", "-D", str(self.dir / "pg"), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        # Durable defaults (fsync, synchronous_commit): an acknowledgement means on disk. The
        # pgbench baselines run against this same server.
        options = (f"-p {self.pg_port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   f"-c max_connections={self.max_connections} -c shared_buffers=512MB "
                   "-c shared_preload_libraries=pg_stat_statements")
        self._pg(["pg_ctl", "-D", str(self.dir / "pg"), "-o", options, "-l", str(self.dir / "pg.log"), "-w",
                  "start"])
        self._pg_started = True
        self.sql_in("postgres", f"CREATE DATABASE {self.database}")
        self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _start_redis(self) -> None:
        redis = shutil.which("redis-server")
        if redis is None:
            sys.exit("redis-server not found (`bash .ci/services.sh` installs it)")
        self._spawn("redis", [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], env=dict(os.environ))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
        raise RuntimeError("redis did not start")

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.web_port}"

    @property
    def env(self) -> dict[str, str]:
        drop = {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "CONVERSA_TEST_DB_NAME", "CHANNEL_LAYER_PREFIX",
                "DJANGO_SETTINGS_MODULE"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update({
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
            "SECRET_KEY": getattr(self, "_secret", None) or self._new_secret(),
            "CONVERSA_EMBEDDED_WORKER": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONVERSA_SANDBOX_SIMULATOR": "1", "CONVERSA_FAST_PASSWORD_HASHING": "1",
            "CONVERSA_VAR_DIR": str(self.dir / "var"), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO / "src"),  # this checkout's code, whichever checkout the venv was installed from
        })
        env.update(self.extra_env)
        return env

    def _new_secret(self) -> str:
        self._secret = secrets.token_urlsafe(50)
        return self._secret

    def _spawn(self, name: str, argv: list[str], *, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.dir / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self._procs[name] = proc
        return proc

    def _stop(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_GRACE)

    def log_of(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_web(self, *, web_processes: int | None = None) -> None:
        """uvicorn as `make run-prod` runs it; returns once /healthz/ answers (any status)."""
        if web_processes is not None:
            self.web_processes = web_processes
        self._spawn("web", [PYTHON, "-m", "uvicorn", "conversa.asgi:application", "--app-dir", "src",
                            "--host", "127.0.0.1", "--port", str(self.web_port), "--workers",
                            str(self.web_processes), "--loop", "uvloop", "--http", "httptools",
                            "--no-access-log", "--timeout-graceful-shutdown", "5",
                            # As make run-prod (decisions #59, #64); BENCH_WS_DEFLATE=1 measures the old
                            # default, BENCH_WS=websockets uvicorn's older websockets implementation.
                            "--ws", os.environ.get("BENCH_WS", "websockets-sansio"),
                            "--ws-per-message-deflate",
                            "true" if os.environ.get("BENCH_WS_DEFLATE") == "1" else "false"],
                    env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            proc = self._procs["web"]
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.log_of('web')[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                # Every worker process must be up: a few answers in a row.
                if all(httpx.get(f"{self.url}/healthz/", timeout=5).status_code for _ in range(4)):
                    return
            time.sleep(0.2)  # polling a starting server: nothing to wait on but its port
        raise RuntimeError(f"uvicorn did not answer within 60 s:\n{self.log_of('web')[-4000:]}")

    def stop_web(self) -> None:
        self._stop("web")

    def restart_web(self, *, web_processes: int | None = None) -> None:
        self.stop_web()
        self.start_web(web_processes=web_processes)

    def start_workers(self, n: int, *args: str) -> None:
        """`n` more `manage.py conversa_worker` processes (extra args passed on)."""
        for _ in range(n):
            name = f"worker-{len(self._workers) + 1}"
            self._spawn(name, [PYTHON, "manage.py", "conversa_worker", *args], env=self.env)
            self._workers.append(name)

    def wait_for_workers(self, n: int, *, deadline: float = 60) -> None:
        """Until `n` task workers beat within the last 5 s (they started and reached the database)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            fresh = self.sql("SELECT count(*) FROM core_workerheartbeat WHERE beat_at > now() - interval '5 seconds'")
            if int(fresh[0][0]) >= n:
                return
            time.sleep(0.2)  # polling other processes' heartbeats
        raise RuntimeError(f"{n} worker(s) did not start:\n{self.log_of('worker-1')[-3000:]}")

    def stop_workers(self) -> None:
        for name in self._workers:
            self._stop(name)
        self._workers = []

    # ------------------------------------------------------------------ helpers
    def manage(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                              timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")
        return done.stdout.decode()

    def open_all_hours(self) -> None:
        """Lines without business hours: a bench measures the busiest hour, which is within them,
        whatever the clock says when it runs (the demo's office hours would make the night's runs
        answer every new customer "we are closed")."""
        self.sql("UPDATE whatsapp_line SET time_group_id = NULL")

    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(f"postgres://postgres@127.0.0.1:{self.pg_port}/{database or self.database}",
                               autocommit=True, connect_timeout=5)

    def sql_in(self, database: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect(database) as conn:
            cursor = conn.execute(query, params or None)  # type: ignore[call-overload]
            return cursor.fetchall() if cursor.description else []

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.sql_in(self.database, query, *params)

    def pgbench(self, script: str, *, clients: int = 64, seconds: int = 10, init_sql: Iterable[str] = ()) -> float:
        """Transactions per second of `script` (pgbench's custom-script syntax) against this server."""
        for statement in init_sql:
            self.sql(statement)
        path = self.dir / "pgbench.sql"
        path.write_text(script)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        done = subprocess.run(
            _as_postgres([str(self.pg_bin / "pgbench"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
                          "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(path), self.database]),
            capture_output=True, timeout=seconds + 120)
        out = done.stdout.decode()
        for line in out.splitlines():
            if line.startswith("tps = "):
                return float(line.split()[2])
        raise RuntimeError(f"pgbench printed no tps:\n{out}\n{done.stderr.decode()}")

    def insert_tps(self, *, clients: int = 64, seconds: int = 10) -> float:
        """The raw baseline: single-row INSERT + COMMIT per transaction."""
        return self.pgbench("INSERT INTO bench_rows (body) VALUES ('x');\n", clients=clients, seconds=seconds,
                            init_sql=["CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, body text)"])
