"""An outbound message's way to the customer: the send task's claim and retry, the send's result,
and the provider's delivery statuses, which move forward only (`queued < sent < delivered < read`;
`failed` only before anybody received it). Statuses for messages we do not know yet are kept
(PendingStatus) and applied when the send result names them."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from conversa.inbox.events import publish_message
from conversa.inbox.models import Message
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import WINDOW_CLOSED, StatusUpdate
from conversa.whatsapp.models import Line, PendingStatus

STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}
# A failure can only follow a message nobody has received yet.
FAILABLE = [Message.Status.QUEUED, Message.Status.SENT]
WINDOW_CLOSED_TEXT = "Window closed — send a template"
# A claim older than this belongs to a worker that died mid-send.
CLAIM_TIMEOUT = datetime.timedelta(minutes=5)


def _failure_title(*, reason: str, title: str) -> str:
    """What the agent reads on a failed message: ours for a reason we know (the adapter's
    vendor-neutral `error_reason`; the provider's raw code stays in error_code), else the provider's."""
    return WINDOW_CLOSED_TEXT if reason == WINDOW_CLOSED else title


def apply_status(line: Line, update: StatusUpdate) -> Message | None:
    """Move a message's status forward only; keep statuses for messages we do not know yet.
    Positional: the signature whatsapp's webhook processing calls (`register_webhook_handlers`)."""
    title = _failure_title(reason=update.error_reason, title=update.error_title)
    ids = [i for i in [update.provider_message_id, *update.alternate_ids] if i]
    message = Message.objects.filter(line=line, provider_message_id__in=ids).first() if ids else None
    if message is None:
        if update.provider_message_id and (update.status in STATUS_RANK or update.status == Message.Status.FAILED):
            # Kept under the primary id only: it is the id our send result will carry.
            PendingStatus.objects.create(line=line, provider_message_id=update.provider_message_id,
                                         status=update.status, error_code=update.error_code,
                                         error_title=title, occurred_at=update.timestamp)
        return None
    with transaction.atomic():
        changed = _advance_status(message, update.status, update.error_code, title)
    return message if changed else None


def _advance_status(message: Message, status: str, error_code: str = "", error_title: str = "") -> bool:
    """Conditional update: only from an earlier status, so a late 'sent' never undoes 'read'."""
    now = timezone.now()
    qs = Message.objects.filter(pk=message.pk)
    if status == Message.Status.FAILED:
        title = error_title or "Failed"
        changed = qs.filter(status__in=FAILABLE).update(
            status=status, error_code=error_code, error_title=title, status_changed_at=now
        )
    elif status in STATUS_RANK:
        earlier = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[Message.Status(status)]]
        changed = qs.filter(status__in=earlier).update(status=status, status_changed_at=now)
    else:
        return False
    if changed:
        message.refresh_from_db()
        publish_message(event_types.MESSAGE_STATUS, message)
    return bool(changed)


def claim_for_send(*, message_id: int) -> Message | None:
    """Take the right to send this message. A conditional update: two workers never both win."""
    now = timezone.now()
    claimed = (
        Message.objects.filter(pk=message_id, status=Message.Status.QUEUED,
                               direction=Message.Direction.OUTBOUND, provider_message_id__isnull=True)
        .filter(Q(send_claimed_at__isnull=True) | Q(send_claimed_at__lt=now - CLAIM_TIMEOUT))
        .update(send_claimed_at=now, send_attempts=F("send_attempts") + 1)
    )
    if not claimed:
        return None
    return Message.objects.select_related("conversation__line__provider", "template").get(pk=message_id)


def schedule_retry(*, message_id: int, run_after: datetime.datetime, code: str, title: str) -> None:
    """A send failed for now: give up the claim and note why (the task enqueues the retry)."""
    Message.objects.filter(pk=message_id).update(send_claimed_at=None, next_attempt_at=run_after,
                                                 error_code=code, error_title=title)


def record_send_success(*, message: Message, provider_message_id: str) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(provider_message_id=provider_message_id,
                                                     send_claimed_at=None)
        message.provider_message_id = provider_message_id
        _advance_status(message, Message.Status.SENT)
        pending = list(PendingStatus.objects.filter(line_id=message.line_id,
                                                    provider_message_id=provider_message_id))
        for status in sorted(pending, key=lambda p: STATUS_RANK.get(p.status, 9)):  # type: ignore[call-overload]
            _advance_status(message, status.status, status.error_code, status.error_title)
        PendingStatus.objects.filter(pk__in=[p.pk for p in pending]).delete()


def record_send_failure(*, message: Message, code: str, title: str, reason: str = "") -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(send_claimed_at=None)
        _advance_status(message, Message.Status.FAILED, code, _failure_title(reason=reason, title=title))
