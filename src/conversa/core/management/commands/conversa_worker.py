"""`manage.py conversa_worker`: the production task worker (run one or more, anywhere)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from conversa.core.worker import SWEEP_EVERY, make_worker, sweep

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run Conversa's background worker: outbound sends, webhook processing, media, sweeps."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=None, help="Seconds between polls when idle.")
        parser.add_argument("--batch", action="store_true", help="Run what is due, then exit.")

    def handle(self, *args: Any, interval: float | None, batch: bool, **options: Any) -> None:
        worker = make_worker(batch=batch, interval=interval)
        stop = threading.Event()

        def shutdown(signum: int, frame: FrameType | None) -> None:
            stop.set()
            worker.running = False

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        sweep()
        if not batch:
            def sweeper() -> None:
                while not stop.wait(SWEEP_EVERY):
                    try:
                        close_old_connections()
                        sweep()
                    except Exception:  # one database hiccup must not stop sweeping for good
                        logger.exception("sweep failed")

            threading.Thread(target=sweeper, daemon=True).start()
        self.stdout.write("conversa worker started")
        worker.run()
