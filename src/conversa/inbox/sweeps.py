"""The inbox's periodic jobs, run by the worker's sweep (registered in InboxConfig.ready())."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone

from conversa.inbox.actions.delivery import expire_send_claims, offer_resends
from conversa.inbox.models import Message
from conversa.inbox.tasks import send_outbound_message


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

