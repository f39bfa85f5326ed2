"""The task worker: django-tasks-db's worker loop plus a sweep that re-enqueues work a crash
left behind (unprocessed webhook events, queued messages whose task vanished)."""

from __future__ import annotations

import datetime
import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)
SWEEP_EVERY = 10.0


def make_worker(*, batch: bool = False, interval: float | None = None) -> Worker:
    return Worker(
        queue_names=["*"], interval=settings.CONVERSA_WORKER_INTERVAL if interval is None else interval,
        batch=batch, backend_name="default", startup_delay=False, max_tasks=None,
        worker_id=get_random_string(32), excluded_queue_names=[],
    )


def sweep() -> dict[str, int]:
    """Re-enqueue what should be in flight but is not. Safe to run anywhere, any number of times."""
    from conversa.inbox.models import Message
    from conversa.inbox.tasks import CLAIM_TIMEOUT, send_outbound_message
    from conversa.realtime.services import prune_events
    from conversa.whatsapp.services import overdue_webhook_events
    from conversa.whatsapp.tasks import process_webhook_event

    events = overdue_webhook_events(datetime.timedelta(seconds=settings.CONVERSA_WEBHOOK_SWEEP_AFTER))
    for event_id in events:
        process_webhook_event.enqueue(event_id)
    from conversa.inbox.services import route_menu_timeouts

    route_menu_timeouts()
    now = timezone.now()
    stale = datetime.timedelta(seconds=max(60.0, settings.CONVERSA_WEBHOOK_SWEEP_AFTER * 2))
    overdue = list(
        Message.objects.filter(status=Message.Status.QUEUED, direction=Message.Direction.OUTBOUND,
                               provider_message_id__isnull=True, next_attempt_at__lt=now - stale)
        .exclude(send_claimed_at__gt=now - CLAIM_TIMEOUT)
        .values_list("pk", flat=True)[:500]
    )
    for message_id in overdue:
        Message.objects.filter(pk=message_id).update(next_attempt_at=now)
        send_outbound_message.enqueue(message_id)
    # The websocket event log only serves catch-up after short disconnects: keep it bounded.
    pruned = prune_events(datetime.timedelta(seconds=settings.CONVERSA_EVENT_RETENTION))
    return {"webhook_events": len(events), "messages": len(overdue), "events_pruned": pruned}


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
