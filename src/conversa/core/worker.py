"""The task worker: django-tasks-db's worker, made to survive database outages, plus a heartbeat,
batch jobs that claim their own rows, and the sweeps that re-enqueue work a crash left behind and keep
the tables bounded.

- Woken, not polling: an idle worker waits on notifications (core.wake: PostgreSQL LISTEN/NOTIFY,
  in-process for SQLite), sent when a task is enqueued or a batch job's work is stored; it polls only
  every CONVERSA_WORKER_INTERVAL s as a fallback, and wakes for the next scheduled retry on time.
- Batch jobs (register_batch_job): work that needs no task row per item (stored webhook events) is
  claimed in batches by the job itself, between tasks, when the worker serves the job's queue.
- The run loop never dies of a database error (PostgreSQL restarted, connection dropped): it drops
  the connection, backs off (bounded, with jitter), puts back the task row and batch claims it held,
  and goes on.
- Queues in settings.CONVERSA_FIRST_QUEUES ("outbound") are served before the others, so an agent's
  reply never waits behind a webhook backlog (one is looked for before every batch).
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
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import BigIntegerField, Exists, Min, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.db.utils import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.compat import Task, TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception
from psycopg import Error as PsycopgError

from conversa.core.models import Lease, WorkerHeartbeat
from conversa.core.wake import TASKS, Listener

logger = logging.getLogger(__name__)
SWEEP_LEASE = "sweep"
# Back-off after a database error: 0.5 s doubling up to this, times a random factor in [0.5, 1].
MAX_BACKOFF = 5.0
# Seconds a task-queue look that found nothing is trusted without a notification (ConversaWorker).
TASK_LOOK_AFTER = 0.5

# name → job returning how many items it handled; run in registration order (INSTALLED_APPS).
_sweeps: dict[str, Callable[[], int]] = {}


def register_sweep(*, name: str, job: Callable[[], int]) -> None:
    """Run `job` on every sweep. Jobs must be safe to run anywhere, any number of times."""
    _sweeps[name] = job


@dataclass(frozen=True)
class BatchJob:
    queue: str  # served by the workers that serve this queue
    channel: str  # the core.wake channel its work is announced on
    run: Callable[[str], int]  # worker id → items claimed and handled (0: nothing to do)
    release: Callable[[str], int]  # worker id → claims put back after a database error


_batch_jobs: dict[str, BatchJob] = {}


def register_batch_job(*, name: str, queue: str, channel: str, run: Callable[[str], int],
                       release: Callable[[str], int]) -> None:
    """Have workers call `run(worker_id)` between tasks, and right away when `channel` is notified.
    `run` claims its own rows (so a dead worker's claim must expire on its own) and commits its work."""
    _batch_jobs[name] = BatchJob(queue=queue, channel=channel, run=run, release=release)


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

    def serves(self, queue: str) -> bool:
        return bool(self.process_all_queues) or queue in self.queue_names

    def batch_jobs(self) -> list[BatchJob]:
        return [job for job in _batch_jobs.values() if self.serves(job.queue)]

    def _ready(self) -> Any:
        ready = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        return ready if self.process_all_queues else ready.filter(queue_name__in=self.queue_names)

    # When a full look last found the task queue empty (monotonic seconds), forgotten on a TASKS
    # notification, a fallback poll or a scheduled retry coming due. For TASK_LOOK_AFTER seconds
    # after such a look the queue is not looked at again between webhook batches: each look is a
    # locking SELECT in a transaction, and two per batch were a quarter of the worker's CPU at 20
    # webhooks/s. The bound keeps a task whose notification was missed from waiting any longer.
    tasks_looked_empty_at: float | None = None

    @property
    def tasks_may_wait(self) -> bool:
        looked = self.tasks_looked_empty_at
        return looked is None or time.monotonic() - looked >= TASK_LOOK_AFTER

    def claim_next(self, *, first_only: bool = False) -> DBTaskResult | None:
        if not self.tasks_may_wait:
            return None
        ready = self._ready()
        first = [name for name in settings.CONVERSA_FIRST_QUEUES if self.serves(name)]
        tiers = [ready.filter(queue_name__in=first)] if first else []
        if not first_only and (self.process_all_queues or set(self.queue_names) - set(first)):
            tiers.append(ready)
        for candidates in tiers:
            with exclusive_transaction(candidates.db):
                task_result = candidates.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)
                    return task_result
        if not first_only and not self.batch:
            self.tasks_looked_empty_at = time.monotonic()
        return None

    def work_once(self) -> bool:
        """A first-queue task if one waits; else a batch of each job and one other task. Whether
        anything was done (an idle worker then waits to be woken)."""
        task_result = self.claim_next(first_only=True)
        if task_result is not None:
            self.run_task(task_result)
            return True
        handled = sum(job.run(self.worker_id) for job in self.batch_jobs())
        task_result = self.claim_next()
        if task_result is not None:
            self.run_task(task_result)
        return bool(handled) or task_result is not None

    def seconds_to_next_scheduled(self) -> float | None:
        """Until the earliest task with a run_after in the future (a send's retry back-off)."""
        now = timezone.now()
        due = (DBTaskResult.objects.filter(status=TaskResultStatus.READY, backend_name=self.backend_name,
                                           run_after__gt=now)
               .filter(Q() if self.process_all_queues else Q(queue_name__in=self.queue_names))
               .aggregate(due=Min("run_after"))["due"])
        return None if due is None else max(0.0, (due - now).total_seconds())

    def idle(self, listener: Listener) -> None:
        """Wait for a notification, the next scheduled task, or the fallback poll."""
        wait = self.interval
        scheduled = self.seconds_to_next_scheduled()
        if scheduled is not None:
            wait = min(wait, scheduled)
        deadline = time.monotonic() + wait
        while self.running and (left := deadline - time.monotonic()) > 0:
            if listener.wait(timeout=left):
                return
        self.tasks_looked_empty_at = None  # the fallback poll, or a scheduled retry due: look

    def release_all(self) -> None:
        release_claims(worker_id=self.worker_id)
        for job in self.batch_jobs():
            job.release(self.worker_id)

    def run(self) -> None:
        logger.info("worker %s serving queues %s", self.worker_id, ",".join(self.queue_names))
        listener = Listener(channels=[TASKS, *(job.channel for job in self.batch_jobs())])
        failures = 0
        release_pending = False
        try:
            while self.running:
                done = False
                try:
                    close_old_connections()
                    if not self.batch:
                        listener.open()  # before looking for work: nothing announced meanwhile is missed
                        if TASKS in listener.news():
                            self.tasks_looked_empty_at = None
                    if release_pending:
                        self.release_all()
                        release_pending = False
                    done = self.work_once()
                    if failures:
                        logger.warning("worker %s: database back, going on", self.worker_id)
                    failures = 0
                    if self.running and not done and not self.batch:
                        self.idle(listener)
                except (OperationalError, InterfaceError, PsycopgError) as exc:
                    if isinstance(exc, OperationalError) and is_locked_database_exception(exc):
                        time.sleep(min(self.interval, 0.2))  # SQLite busy: it unlocks eventually
                        continue
                    failures += 1
                    release_pending = True
                    delay = backoff_delay(failures=failures)
                    logger.warning("worker %s: database error (%s); retrying in %.1f s", self.worker_id, exc, delay)
                    drop_connection()
                    listener.close()
                    time.sleep(delay)
                    continue
                if self.batch and not done:
                    return
        finally:
            listener.close()


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
