"""WhatsApp's periodic jobs, run by the worker's sweep, and the health reading of the same backlog
(registered in WhatsappConfig.ready())."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone

from conversa.whatsapp.models import WebhookEvent
from conversa.whatsapp.services import overdue_webhook_events
from conversa.whatsapp.tasks import process_webhook_event


def requeue_overdue_webhook_events() -> int:
    """Stored webhook events still unprocessed after a while (a crash, a lost enqueue): enqueue again."""
    events = overdue_webhook_events(datetime.timedelta(seconds=settings.CONVERSA_WEBHOOK_SWEEP_AFTER))
    for event_id in events:
        process_webhook_event.enqueue(event_id)
    return len(events)


def webhook_backlog() -> int:
    """For /healthz/: events stored but unprocessed for over a minute (no task worker running?)."""
    return WebhookEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=timezone.now() - datetime.timedelta(minutes=1)).count()
