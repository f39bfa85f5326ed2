"""The task worker: django-tasks-db's worker, made to survive database outages, plus a heartbeat and
the sweeps that re-enqueue work a crash left behind and keep the tables bounded.

- The run loop never dies of a database error (PostgreSQL restarted, connection dropped): it drops
  the connection, backs off (bounded, with jitter), puts back the task row it had claimed, and goes on.
- Queues in settings.CONVERSA_FIRST_QUEUES ("outbound") are served before the others, so an agent's
  reply never waits behind a webhook backlog.
- A heartbeat thread keeps a WorkerHeartbeat row fresh. A task row left RUNNING by a worker whose
  beat went stale (kill -9) is put back to READY by the sweep (tasks are idempotent on our side).
- One worker at a time sweeps (a Lease row). The sweeps belong to the apps that own the work: each
  registers its own in AppConfig.ready() (register_sweep), so this module knows no domain app.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import BigIntegerField, Exists, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.db.utils import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.compat import Task, TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from conversa.core.models import Lease, WorkerHeartbeat

logger = logging.getLogger(__name__)
SWEEP_LEASE = "sweep"
# Back-off after a database error: 0.5 s doubling up to this, times a random factor in [0.5, 1].
MAX_BACKOFF = 5.0

# name → job returning how many items it handled; run in registration order (INSTALLED_APPS).
_sweeps: dict[str, Callable[[], int]] = {}


def register_sweep(*, name: str, job: Callable[[], int]) -> None:
    """Run `job` on every sweep. Jobs must be safe to run anywhere, any number of times."""
    _sweeps[name] = job


def sweep() -> dict[str, int]:
    """Run every registered sweep job; returns how many items each handled, by name."""
    return {name: job() for name, job in list(_sweeps.items())}


def backoff_delay(*, failures: int) -> float:
    return min(MAX_BACKOFF, 0.5 * 2 ** max(failures - 1, 0)) * random.uniform(0.5, 1.0)


def drop_connection() -> None:
    """Forget a connection a database error left broken; the next query opens a new one."""
    try:
        connection.close()
    except DatabaseError:
        logger.debug("closing a broken connection failed", exc_info=True)


def take_lease(*, name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease `name` for `seconds`; False while another holder's is unexpired.
    One conditional UPDATE decides between concurrent takers (then a create for the very first)."""
    now = timezone.now()
    expires_at = now + datetime.timedelta(seconds=seconds)
    if Lease.objects.filter(Q(holder=holder) | Q(expires_at__lt=now), name=name).update(
            holder=holder, expires_at=expires_at):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def beat(*, worker_id: str, queues: str, started_at: datetime.datetime) -> None:
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"beat_at": timezone.now()},
        create_defaults={"beat_at": timezone.now(), "hostname": socket.gethostname()[:255], "pid": os.getpid(),
                         "queues": queues[:255], "started_at": started_at},
    )


def release_claims(*, worker_id: str) -> int:
    """Put back to READY the rows this worker left RUNNING (a database error interrupted the task or
    its result write, so nobody is running them). Called by the worker itself, between tasks."""
    released = 0
    for row in DBTaskResult.objects.running().only("id", "worker_ids", "started_at"):
        if row.worker_ids and row.worker_ids[-1] == worker_id:
            released += DBTaskResult.objects.filter(
                pk=row.pk, status=TaskResultStatus.RUNNING, started_at=row.started_at,
            ).update(status=TaskResultStatus.READY)
    return released


def expire_abandoned_tasks() -> int:
    """RUNNING rows claimed by a worker whose heartbeat is stale (or that never beat) and started
    longer ago than the stale limit: back to READY, or FAILED after CONVERSA_TASK_MAX_RUNS runs (a
    task that kills its worker every time must not kill them all)."""
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=settings.CONVERSA_WORKER_STALE_AFTER)
    alive = set(WorkerHeartbeat.objects.filter(beat_at__gte=stale).values_list("worker_id", flat=True))
    expired = 0
    rows = DBTaskResult.objects.running().filter(started_at__lt=stale).only("id", "worker_ids", "started_at")
    for row in rows[:500]:
        if row.worker_ids and row.worker_ids[-1] in alive:
            continue  # a long task of a live worker
        claim = DBTaskResult.objects.filter(pk=row.pk, status=TaskResultStatus.RUNNING, started_at=row.started_at)
        if len(row.worker_ids) >= settings.CONVERSA_TASK_MAX_RUNS:
            expired += claim.update(
                status=TaskResultStatus.FAILED, finished_at=now, exception_class_path="conversa.core.worker.Abandoned",
                traceback=f"Abandoned by {len(row.worker_ids)} workers that died while running it.")
        else:
            expired += claim.update(status=TaskResultStatus.READY)
    if expired:
        logger.warning("put back %d task rows abandoned by dead workers", expired)
    return expired


def prune_finished_tasks() -> int:
    """Finished task rows older than CONVERSA_TASK_RETENTION (django-tasks-db keeps them forever);
    in bounded batches, so a large backlog never holds one long delete."""
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.CONVERSA_TASK_RETENTION)
    ids = list(DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).values_list("pk", flat=True)[:5000])
    return DBTaskResult.objects.filter(pk__in=ids).delete()[0] if ids else 0


def prune_stale_heartbeats() -> int:
    """Rows of workers gone for a day (a clean stop deletes its own row at once)."""
    return WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - datetime.timedelta(days=1)).delete()[0]


class ConversaWorker(Worker):  # type: ignore[misc]
    """django-tasks-db's Worker with our loop (see the module docstring); run_task is theirs."""

    def claim_next(self) -> DBTaskResult | None:
        ready = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            ready = ready.filter(queue_name__in=self.queue_names)
        first = [name for name in settings.CONVERSA_FIRST_QUEUES
                 if self.process_all_queues or name in self.queue_names]
        tiers = [ready.filter(queue_name__in=first)] if first else []
        if self.process_all_queues or set(self.queue_names) - set(first):
            tiers.append(ready)
        for candidates in tiers:
            with exclusive_transaction(candidates.db):
                task_result = candidates.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)
                    return task_result
        return None

    def run(self) -> None:
        logger.info("worker %s serving queues %s", self.worker_id, ",".join(self.queue_names))
        failures = 0
        release_pending = False
        while self.running:
            task_result = None
            try:
                close_old_connections()
                if release_pending:
                    release_claims(worker_id=self.worker_id)
                    release_pending = False
                task_result = self.claim_next()
                if task_result is not None:
                    self.run_task(task_result)
                if failures:
                    logger.warning("worker %s: database back, going on", self.worker_id)
                failures = 0
            except (OperationalError, InterfaceError) as exc:
                if isinstance(exc, OperationalError) and is_locked_database_exception(exc):
                    time.sleep(self.interval)  # SQLite busy: it unlocks eventually
                    continue
                failures += 1
                release_pending = True
                delay = backoff_delay(failures=failures)
                logger.warning("worker %s: database error (%s); retrying in %.1f s", self.worker_id, exc, delay)
                drop_connection()
                time.sleep(delay)
                continue
            if self.batch and task_result is None:
                return
            if self.running and task_result is None:
                time.sleep(self.interval)


def make_worker(*, batch: bool = False, interval: float | None = None,
                queues: list[str] | None = None) -> ConversaWorker:
    return ConversaWorker(
        queue_names=queues or ["*"],
        interval=settings.CONVERSA_WORKER_INTERVAL if interval is None else interval,
        batch=batch, backend_name="default", startup_delay=False, max_tasks=None,
        worker_id=get_random_string(32), excluded_queue_names=[],
    )


class Housekeeping:
    """A worker's companion threads: the heartbeat, and the sweep (run only while this worker holds
    the sweep lease). Both outlive database errors; stop() deletes the heartbeat row."""

    def __init__(self, *, worker: Worker) -> None:
        self.worker = worker
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._beat, name="conversa-heartbeat", daemon=True),
            threading.Thread(target=self._sweep, name="conversa-sweep", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _beat(self) -> None:
        queues = ",".join(self.worker.queue_names)
        while True:
            try:
                close_old_connections()
                beat(worker_id=self.worker.worker_id, queues=queues, started_at=self.started_at)
            except DatabaseError as exc:
                logger.warning("heartbeat failed: %s", exc)
                drop_connection()
            if self._stop.wait(settings.CONVERSA_WORKER_HEARTBEAT_EVERY):
                break
        close_old_connections()

    def _sweep(self) -> None:
        every = settings.CONVERSA_SWEEP_EVERY
        while True:
            try:
                close_old_connections()
                if take_lease(name=SWEEP_LEASE, holder=self.worker.worker_id, seconds=3 * every):
                    sweep()
            except DatabaseError as exc:
                logger.warning("sweep failed: %s", exc)
                drop_connection()
            except Exception:  # one bad job must not stop sweeping for good
                logger.exception("sweep failed")
            if self._stop.wait(every):
                break
        close_old_connections()

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        try:
            WorkerHeartbeat.objects.filter(worker_id=self.worker.worker_id).delete()
            Lease.objects.filter(name=SWEEP_LEASE, holder=self.worker.worker_id).delete()
        except DatabaseError:
            logger.warning("could not remove the heartbeat of worker %s", self.worker.worker_id)
        finally:
            close_old_connections()


class EmbeddedWorker:
    """Runs the worker and its housekeeping as daemon threads inside the web process (embedded mode)."""

    def __init__(self) -> None:
        self.worker = make_worker()
        self.housekeeping = Housekeeping(worker=self.worker)
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run_worker, name="conversa-worker", daemon=True)]
        self.threads[0].start()
        self.housekeeping.start()

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            try:
                self.worker.run()
            except Exception:
                logger.exception("embedded worker crashed; restarting")
                self._stop.wait(1.0)
        close_old_connections()

    def stop(self) -> None:
        self._stop.set()
        self.worker.running = False
        for thread in self.threads:
            thread.join(timeout=5)
        self.housekeeping.stop()


_embedded: EmbeddedWorker | None = None
_lock = threading.Lock()


def start_embedded_worker() -> EmbeddedWorker:
    global _embedded
    with _lock:
        if _embedded is None:
            _embedded = EmbeddedWorker()
            _embedded.start()
        return _embedded


def live_task_exists(*, task: Task[..., object], first_arg: OuterRef) -> Exists:
    """For a filter: a READY or RUNNING row of `task` whose first argument is `first_arg`, i.e. the
    work is already queued or under way and enqueueing it again would only duplicate it."""
    return Exists(
        DBTaskResult.objects.filter(task_path=task.module_path,
                                    status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING])
        .annotate(first_arg=Cast(KT("args_kwargs__args__0"), BigIntegerField()))
        .filter(first_arg=first_arg)
    )
