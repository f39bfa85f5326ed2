"""What /healthz/ reports besides the database: readings registered by the apps (AppConfig.ready()),
so core knows no domain app. A reading with a `problem` makes /healthz/ answer 503."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from conversa.core.models import WorkerHeartbeat


@dataclass(frozen=True)
class HealthReading:
    value: dict[str, Any]  # JSON, shown under the reading's name
    problem: str | None = None  # why this makes the service unhealthy; None when fine


# name → a database read, run on every /healthz/ request (keep it to an indexed query or two).
_health_readings: dict[str, Callable[[], HealthReading]] = {}


def register_health_reading(*, name: str, read: Callable[[], HealthReading]) -> None:
    _health_readings[name] = read


def health_readings() -> dict[str, HealthReading]:
    return {name: read() for name, read in list(_health_readings.items())}


def workers_reading() -> HealthReading:
    """Task workers with a fresh heartbeat. None alive is a problem when CONVERSA_HEALTH_REQUIRE_WORKER
    (default: unless the worker is embedded in the web process, whose answering is its liveness too)."""
    fresh = timezone.now() - datetime.timedelta(seconds=settings.CONVERSA_WORKER_STALE_AFTER)
    alive = WorkerHeartbeat.objects.filter(beat_at__gte=fresh).count()
    stale = WorkerHeartbeat.objects.filter(beat_at__lt=fresh).count()
    problem = None
    if not alive and settings.CONVERSA_HEALTH_REQUIRE_WORKER:
        problem = f"no task worker has beaten in the last {settings.CONVERSA_WORKER_STALE_AFTER:g} s"
    return HealthReading(value={"alive": alive, "stale": stale}, problem=problem)
