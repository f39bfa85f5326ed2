"""The task worker: django-tasks-db's worker loop plus sweeps that re-enqueue work a crash left
behind (unprocessed webhook events, queued messages whose task vanished) and keep logs bounded.

The sweeps belong to the apps that own the work: each registers its own in AppConfig.ready()
(register_sweep), so this loop knows no domain app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)
SWEEP_EVERY = 10.0

# name → job returning how many items it handled; run in registration order (INSTALLED_APPS).
_sweeps: dict[str, Callable[[], int]] = {}


def register_sweep(*, name: str, job: Callable[[], int]) -> None:
    """Run `job` on every sweep. Jobs must be safe to run anywhere, any number of times."""
    _sweeps[name] = job


def make_worker(*, batch: bool = False, interval: float | None = None) -> Worker:
    return Worker(
        queue_names=["*"], interval=settings.CONVERSA_WORKER_INTERVAL if interval is None else interval,
        batch=batch, backend_name="default", startup_delay=False, max_tasks=None,
        worker_id=get_random_string(32), excluded_queue_names=[],
    )


def sweep() -> dict[str, int]:
    """Run every registered sweep job; returns how many items each handled, by name."""
    return {name: job() for name, job in list(_sweeps.items())}


class EmbeddedWorker:
    """Runs the worker and the sweep as daemon threads inside the web process (embedded mode)."""

    def __init__(self) -> None:
        self.worker = make_worker()
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self._run_worker, name="conversa-worker", daemon=True),
            threading.Thread(target=self._run_sweep, name="conversa-sweep", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            try:
                self.worker.run()
            except Exception:
                logger.exception("embedded worker crashed; restarting")
                self._stop.wait(1.0)
        close_old_connections()

    def _run_sweep(self) -> None:
        while not self._stop.wait(SWEEP_EVERY):
            try:
                close_old_connections()
                sweep()
            except Exception:
                logger.exception("sweep failed")
        close_old_connections()

    def stop(self) -> None:
        self._stop.set()
        self.worker.running = False
        for thread in self.threads:
            thread.join(timeout=5)


_embedded: EmbeddedWorker | None = None
_lock = threading.Lock()


def start_embedded_worker() -> EmbeddedWorker:
    global _embedded
    with _lock:
        if _embedded is None:
            _embedded = EmbeddedWorker()
            _embedded.start()
        return _embedded
