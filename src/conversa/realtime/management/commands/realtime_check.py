"""`manage.py realtime_check`: health check of live updates, for monitoring and deploy scripts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Min
from django.utils import timezone

from conversa.realtime.models import StreamEvent


class Command(BaseCommand):
    help = ("Send a message through the channel layer and read it back, and report the event log's "
            "size and age as JSON. Exits non-zero when the round trip fails.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds to wait for the round trip.")

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("No channel layer configured (CHANNEL_LAYERS).")

        async def round_trip() -> None:
            channel = await layer.new_channel()
            reply = asyncio.ensure_future(layer.receive(channel))
            try:
                deadline = asyncio.get_running_loop().time() + timeout
                # Pub/sub does not wait for the subscription to be in place, and a message sent
                # before it is gone: send again until one comes back.
                while not reply.done():
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        raise TimeoutError(f"nothing came back within {timeout}s")
                    await layer.send(channel, {"type": "conversa.healthcheck"})
                    await asyncio.wait([reply], timeout=min(0.2, remaining))
                reply.result()
            finally:
                reply.cancel()

        started = time.monotonic()
        try:
            async_to_sync(round_trip)()
        except Exception as exc:
            raise CommandError(f"Channel layer round trip failed: {exc!r}") from exc
        stats = StreamEvent.objects.aggregate(events=Count("pk"), last_id=Max("pk"), oldest=Min("created_at"))
        oldest = stats["oldest"]
        report = {
            "channel_layer": type(layer).__name__,
            "round_trip_ms": round((time.monotonic() - started) * 1000, 1),
            "events": stats["events"],
            "last_event_id": stats["last_id"] or 0,
            "oldest_event_age_s": round((timezone.now() - oldest).total_seconds()) if oldest else None,
        }
        self.stdout.write(json.dumps(report))
