"""WhatsApp's periodic jobs, run by the worker's sweep, and the health reading of the same backlog
(registered in WhatsappConfig.ready())."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import Min, OuterRef, Q
from django.utils import timezone

from conversa.core.health import HealthReading
from conversa.core.models import WorkerHeartbeat
from conversa.core.wake import WEBHOOKS, notify
from conversa.core.worker import live_task_exists
from conversa.whatsapp.models import WebhookEvent, WebhookItemFailure
from conversa.whatsapp.services import WEBHOOK_MAX_ATTEMPTS
from conversa.whatsapp.tasks import retry_webhook_item_failures


def requeue_overdue_webhook_events() -> int:
    """Stored webhook events still unprocessed after a while that nobody holds (their wake-up was
    lost, a failed run's back-off passed, their worker died): wake the workers to claim them. Events
    under a live claim are left alone; the claim itself decides (services.claim_webhook_events), so
    sweeping any number of times never duplicates work."""
    now = timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.CONVERSA_WEBHOOK_SWEEP_AFTER)
    stale = now - datetime.timedelta(seconds=settings.CONVERSA_WORKER_STALE_AFTER)
    alive = WorkerHeartbeat.objects.filter(beat_at__gte=stale).values("worker_id")
    waiting = (WebhookEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff,
                                           attempts__lt=WEBHOOK_MAX_ATTEMPTS)
               .filter(Q(claimed_by__isnull=True) | ~Q(claimed_by__in=alive))[:500].count())
    if waiting:
        notify(channel=WEBHOOKS)
    return waiting


def retry_failed_webhook_items() -> int:
    """Events with a failed item whose next try is due and no retry task waiting or running:
    enqueue one (at most one live task per event, as for the events themselves)."""
    due = list(
        WebhookItemFailure.objects.filter(resolved_at__isnull=True, next_attempt_at__lte=timezone.now())
        .exclude(live_task_exists(task=retry_webhook_item_failures, first_arg=OuterRef("event_id")))
        .order_by("event_id").values_list("event_id", flat=True).distinct()[:500]
    )
    for event_id in due:
        retry_webhook_item_failures.enqueue(event_id)
    return len(due)


def webhook_item_failures() -> HealthReading:
    """For /healthz/: webhook items that failed while their batch was applied, still being retried
    and given up (waiting for an admin). Reported, not a 503: the service itself is fine."""
    open_failures = WebhookItemFailure.objects.filter(resolved_at__isnull=True)
    retrying = open_failures.filter(next_attempt_at__isnull=False).count()
    given_up = open_failures.filter(next_attempt_at__isnull=True).count()
    return HealthReading(value={"retrying": retrying, "given_up": given_up})


def webhook_backlog() -> HealthReading:
    """For /healthz/: unprocessed events and the age of the oldest. Past CONVERSA_HEALTH_MAX_BACKLOG
    events or CONVERSA_HEALTH_MAX_BACKLOG_AGE seconds, the workers are down or cannot keep up."""
    backlog = WebhookEvent.objects.filter(processed_at__isnull=True, attempts__lt=WEBHOOK_MAX_ATTEMPTS).aggregate(
        oldest=Min("received_at"))
    pending = WebhookEvent.objects.filter(processed_at__isnull=True, attempts__lt=WEBHOOK_MAX_ATTEMPTS).count()
    age = (timezone.now() - backlog["oldest"]).total_seconds() if backlog["oldest"] else 0.0
    problems = []
    if pending > settings.CONVERSA_HEALTH_MAX_BACKLOG:
        problems.append(f"{pending} unprocessed webhook events (limit {settings.CONVERSA_HEALTH_MAX_BACKLOG})")
    if age > settings.CONVERSA_HEALTH_MAX_BACKLOG_AGE:
        problems.append(f"oldest unprocessed webhook event is {age:.0f} s old "
                        f"(limit {settings.CONVERSA_HEALTH_MAX_BACKLOG_AGE:g} s)")
    return HealthReading(value={"pending": pending, "oldest_age_seconds": round(age, 1)},
                         problem="; ".join(problems) or None)
