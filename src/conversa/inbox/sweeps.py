"""The inbox's periodic jobs, run by the worker's sweep (registered in InboxConfig.ready())."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import OuterRef, Q
from django.utils import timezone

from conversa.core.worker import live_task_exists
from conversa.inbox.actions.delivery import expire_send_claims, offer_resends
from conversa.inbox.models import Message
from conversa.inbox.tasks import fetch_inbound_media, send_outbound_message


def requeue_overdue_messages() -> int:
    """Queued outbound messages whose send task vanished (a crash, a lost enqueue) before any call
    was made (no claim): enqueue again. A claimed one may have reached the provider: when its claim
    expires it becomes unconfirmed instead (`expire_send_claims`), and the agent is offered to resend
    what nothing confirmed in time (`offer_resends`)."""
    expire_send_claims()
    offer_resends()
    now = timezone.now()
    stale = datetime.timedelta(seconds=max(60.0, settings.CONVERSA_WEBHOOK_SWEEP_AFTER * 2))
    overdue = list(
        Message.objects.filter(status=Message.Status.QUEUED, direction=Message.Direction.OUTBOUND,
                               provider_message_id__isnull=True, next_attempt_at__lt=now - stale,
                               send_claimed_at__isnull=True)
        .values_list("pk", flat=True)[:500]
    )
    for message_id in overdue:
        Message.objects.filter(pk=message_id).update(next_attempt_at=now)
        send_outbound_message.enqueue(message_id)
    return len(overdue)



def requeue_media_downloads() -> int:
    """Customers' attachments still to download (no file, not given up) whose task is gone — a
    worker killed mid-download whose row ran out of runs, an enqueue lost in a crash — and whose
    back-off (`next_attempt_at`) has passed: enqueue again. A message whose task is still waiting
    or running is left alone (at most one live task per message, as for webhook events)."""
    now = timezone.now()
    settled = now - datetime.timedelta(seconds=settings.CONVERSA_WEBHOOK_SWEEP_AFTER)
    orphans = list(
        Message.objects.filter(direction=Message.Direction.INBOUND, media="", created_at__lt=settled)
        .exclude(media_provider_id="").exclude(payload__has_key="media_failed")
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .exclude(live_task_exists(task=fetch_inbound_media, first_arg=OuterRef("pk")))
        .order_by("pk").values_list("pk", flat=True)[:500]
    )
    for message_id in orphans:
        fetch_inbound_media.enqueue(message_id)
    return len(orphans)
