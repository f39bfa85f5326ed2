"""Real server processes for the tests that need them: a free loopback port, the environment that
points a subprocess at the test database, and `Processes`, which starts commands in their own
sessions (a log file each), polls a server until it answers or a deadline passes, and stops every
process group it started: SIGTERM, then SIGKILL for a group that outlives the grace period."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[1]
STOP_GRACE = 10.0  # seconds a process group gets to exit after SIGTERM, and again after SIGKILL


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_env() -> dict[str, str]:
    """Point a subprocess at the database this test runs on."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return {"DATABASE_URL": f"postgres://{quote(db['USER'] or '')}:{quote(str(db['PASSWORD'] or ''))}"
                                f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    assert connection.vendor == "sqlite", connection.vendor
    return {"SQLITE_PATH": str(db["NAME"])}


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment for a server on the test database: our own database, Redis and
    embedded-worker settings left out, quiet logs on loopback, then `extra` on top."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "CONVERSA_EMBEDDED_WORKER"}}
    env.update(database_env())
    env.update({"ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def answers_ok(status: int) -> bool:
    return status == 200


class Processes:
    """Subprocesses started in their own sessions, each writing to `<logs>/<name>.log`; a context
    manager that stops them all on exit.

    log_tail: how much of a log (its end) a failure shows; all of it when None.
    killed_ok: a process that died of SIGKILL was killed by the test on purpose, not a failure.
    """

    def __init__(self, logs: Path, *, log_tail: int | None = None, killed_ok: bool = False) -> None:
        self.logs = logs
        self.log_tail = log_tail
        self.killed_ok = killed_ok
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], *, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def start_uvicorn(self, name: str, *, env: dict[str, str]) -> int:
        """The real ASGI app on a free loopback port (returned), not yet waited for."""
        port = free_port()
        self.start(name, [sys.executable, "-m", "uvicorn", "conversa.asgi:application", "--app-dir", "src",
                          "--host", "127.0.0.1", "--port", str(port), "--no-access-log"], env=env)
        return port

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if self.log_tail is None else text[-self.log_tail:]

    def check_alive(self) -> None:
        """Fail the test, with the log, if any of the processes exited."""
        for name, proc in self.procs:
            if proc.poll() is not None and not (self.killed_ok and proc.returncode == -signal.SIGKILL):
                pytest.fail(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def wait_http(self, name: str, url: str, *, deadline: float, ready: Callable[[int], bool] = answers_ok,
                  timeout: float = 2.0) -> None:
        """Until GET url (each try given `timeout` seconds) answers a status `ready` accepts; fails with
        name's log after `deadline` seconds, or as soon as a process exits."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            self.check_alive()
            try:
                if ready(httpx.get(url, timeout=timeout).status_code):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
        pytest.fail(f"{name} did not answer {url} within {deadline}s:\n{self.log(name)}")

    def stop_all(self) -> None:
        """SIGTERM every process group, then SIGKILL any whose leader has not exited after STOP_GRACE.
        A group outlives its exited leader while a child of it runs, so each one is signalled."""
        for _, proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(STOP_GRACE)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id is the leader's pid, which the kernel does not reuse while the group has members.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@contextlib.contextmanager
def running_server(*, env: dict[str, str], logs: Path, ready_path: str, deadline: float) -> Iterator[str]:
    """uvicorn (named "uvicorn", logging to `<logs>/uvicorn.log`) on a free loopback port; yields its
    URL once GET ready_path answers 200 within `deadline` seconds, and stops it on exit."""
    with Processes(logs) as processes:
        url = local_url(processes.start_uvicorn("uvicorn", env=env))
        processes.wait_http("uvicorn", f"{url}{ready_path}", deadline=deadline)
        yield url
