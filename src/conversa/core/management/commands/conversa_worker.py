"""`manage.py conversa_worker`: the production task worker (run one or more, anywhere)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from conversa.core.worker import Housekeeping, make_worker, sweep


class Command(BaseCommand):
    help = "Run Conversa's background worker: outbound sends, webhook processing, media, sweeps."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=None,
                            help="Seconds between fallback polls when idle (workers are woken by notifications).")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Webhook events claimed and applied per transaction (CONVERSA_WEBHOOK_BATCH).")
        parser.add_argument("--batch", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--queues", default="all",
                            help="Comma-separated queues to serve, or 'all' (default); 'outbound' first always.")

    def handle(self, *args: Any, interval: float | None, batch: bool, queues: str, batch_size: int | None,
               **options: Any) -> None:
        if batch_size is not None:
            settings.CONVERSA_WEBHOOK_BATCH = max(1, batch_size)
        names = [name for name in queues.split(",") if name and name not in ("all", "*")]
        worker = make_worker(batch=batch, interval=interval, queues=names or None)

        def shutdown(signum: int, frame: FrameType | None) -> None:
            worker.running = False  # finish the current task, then leave the loop

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        if batch:
            sweep()
            worker.run()
            return
        housekeeping = Housekeeping(worker=worker)
        housekeeping.start()
        self.stdout.write(f"conversa worker {worker.worker_id} started", ending="\n")
        self.stdout.flush()
        try:
            worker.run()
        finally:
            housekeeping.stop()
