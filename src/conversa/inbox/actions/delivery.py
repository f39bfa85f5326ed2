"""An outbound message's way to the customer: the send task's claim and retry, the send's result,
and the provider's delivery statuses, which move forward only (`queued < unconfirmed < sent <
delivered < read < played`; `failed` only before anybody received it). Statuses for messages we do not know
yet are kept (PendingStatus) and applied when the send result names them.

A send is made at most once by itself (docs/decisions.md #39): the claim is taken right before the
provider call, so a claim that expires means the call may have happened and the message becomes
`unconfirmed` instead of being sent again; an ambiguous answer does the same. A status callback
carrying our reference (or, for providers without one, the same recipient shortly after) binds the
provider's id to it and moves it forward; otherwise the agent is offered to resend it."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.contacts.phones import wa_id
from conversa.core.errors import Conflict, NotFound
from conversa.inbox import audit, hooks
from conversa.inbox.actions.common import owned_conversation
from conversa.inbox.actions.inbound_events import message_by_provider_ids
from conversa.inbox.events import publish_message
from conversa.inbox.models import AuditEntry, Message
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import WINDOW_CLOSED, StatusUpdate
from conversa.whatsapp.models import Line, PendingStatus

logger = logging.getLogger(__name__)

STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.UNCONFIRMED: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.READ: 4,
    Message.Status.PLAYED: 5,  # a voice note listened to: after read
}
# A failure can only follow a message nobody has received yet.
FAILABLE = [Message.Status.QUEUED, Message.Status.UNCONFIRMED, Message.Status.SENT]
WINDOW_CLOSED_TEXT = "Window closed — send a template"
# Our id of a message as the provider echoes it back (Meta's biz_opaque_callback_data).
REFERENCE_PREFIX = "conversa:"
# Providers without a reference: a status for the same customer this soon after an unconfirmed send
# is taken to be that send's, when exactly one such send exists.
RECIPIENT_MATCH_WINDOW = datetime.timedelta(minutes=10)


def claim_timeout() -> datetime.timedelta:
    """A claim older than this belongs to a worker that died mid-send."""
    return datetime.timedelta(seconds=settings.CONVERSA_SEND_CLAIM_TIMEOUT)


def send_reference(*, message_id: int) -> str:
    return f"{REFERENCE_PREFIX}{message_id}"


def message_id_from_reference(reference: str) -> int | None:
    if not reference.startswith(REFERENCE_PREFIX):
        return None
    number = reference[len(REFERENCE_PREFIX):]
    return int(number) if number.isdigit() and len(number) < 19 else None


def _failure_title(*, reason: str, title: str) -> str:
    """What the agent reads on a failed message: ours for a reason we know (the adapter's
    vendor-neutral `error_reason`; the provider's raw code stays in error_code), else the provider's."""
    return WINDOW_CLOSED_TEXT if reason == WINDOW_CLOSED else title


def apply_status(line: Line, update: StatusUpdate) -> Message | None:
    """Move a message's status forward only; keep statuses for messages we do not know yet.
    Positional: the signature whatsapp's webhook processing calls (`register_webhook_handlers`)."""
    title = _failure_title(reason=update.error_reason, title=update.error_title)
    ids = [i for i in [update.provider_message_id, *update.alternate_ids] if i]
    message = message_by_provider_ids(line, ids)
    if message is None and update.provider_message_id:
        message = _reconcile(line=line, update=update)
    if message is None:
        if hooks.unknown_message_status(line=line, update=update):  # a bulk send's, say
            return None
        if update.provider_message_id and (update.status in STATUS_RANK or update.status == Message.Status.FAILED):
            # Kept under the primary id only: it is the id our send result will carry.
            PendingStatus.objects.create(line=line, provider_message_id=update.provider_message_id,
                                         status=update.status, error_code=update.error_code,
                                         error_title=title, occurred_at=update.timestamp)
        return None
    with transaction.atomic():
        changed = _advance_status(message, update.status, update.error_code, title)
    return message if changed else None


def _reconcile(*, line: Line, update: StatusUpdate) -> Message | None:
    """The provider reports on a message whose id we never recorded (the answer was lost, or the
    write of it failed): find ours by the reference it echoes, else by recipient and time, and bind
    the provider's id to it. None when nothing matches without guessing."""
    unbound = Message.objects.filter(line=line, direction=Message.Direction.OUTBOUND,
                                     provider_message_id__isnull=True)
    candidate: Message | None = None
    message_id = message_id_from_reference(update.reference)
    if message_id is not None:
        # Queued too: the status may beat our own record of the send.
        candidate = unbound.filter(pk=message_id, status__in=[Message.Status.QUEUED,
                                                              Message.Status.UNCONFIRMED]).first()
    elif not update.reference and update.recipient:
        when = update.timestamp or timezone.now()
        digits = "".join(ch for ch in update.recipient if ch.isdigit())
        nearby = unbound.filter(status=Message.Status.UNCONFIRMED,
                                send_started_at__range=(when - RECIPIENT_MATCH_WINDOW, when + RECIPIENT_MATCH_WINDOW),
                                ).select_related("conversation")
        matches = [m for m in nearby[:50] if wa_id(m.conversation.customer_phone) == digits]
        candidate = matches[0] if len(matches) == 1 else None
    if candidate is None:
        return None
    try:
        with transaction.atomic():
            bound = _bind(candidate, update.provider_message_id)
    except IntegrityError:  # another callback bound the same id meanwhile
        return None
    return candidate if bound else None


def _bind(message: Message, provider_message_id: str) -> bool:
    """Record the provider's id on a message that has none yet: it went out. Clears the claim and
    old errors, moves it to sent and applies statuses that arrived first. Inside a transaction."""
    bound = Message.objects.filter(pk=message.pk, provider_message_id__isnull=True).update(
        provider_message_id=provider_message_id, send_claimed_at=None, error_code="", error_title="")
    if not bound:
        return False
    message.provider_message_id = provider_message_id
    _advance_status(message, Message.Status.SENT)
    pending = list(PendingStatus.objects.filter(line_id=message.line_id, provider_message_id=provider_message_id))
    for status in sorted(pending, key=lambda p: STATUS_RANK.get(p.status, 9)):  # type: ignore[call-overload]
        _advance_status(message, status.status, status.error_code, status.error_title)
    PendingStatus.objects.filter(pk__in=[p.pk for p in pending]).delete()
    return True


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
    """Take the right to call the provider for this message, right before the call (so the claim
    also records that the call started). A conditional update: two workers never both win, and a
    claim is never taken over — an expired one is the sweep's (`expire_send_claims`)."""
    now = timezone.now()
    claimed = (
        Message.objects.filter(pk=message_id, status=Message.Status.QUEUED, send_claimed_at__isnull=True,
                               direction=Message.Direction.OUTBOUND, provider_message_id__isnull=True)
        .update(send_claimed_at=now, send_started_at=now, send_attempts=F("send_attempts") + 1)
    )
    if not claimed:
        return None
    return Message.objects.select_related("conversation__line__provider", "template").get(pk=message_id)


def schedule_retry(*, message_id: int, run_after: datetime.datetime, code: str, title: str) -> None:
    """A send provably did not reach the provider: give up the claim and note why (the task
    enqueues the retry)."""
    Message.objects.filter(pk=message_id).update(send_claimed_at=None, next_attempt_at=run_after,
                                                 error_code=code, error_title=title)


def record_send_success(*, message: Message, provider_message_id: str) -> bool:
    """The provider accepted it: bind its id (clearing old errors), unless a status callback bound
    one first. True once recorded."""
    with transaction.atomic():
        if not _bind(message, provider_message_id):
            Message.objects.filter(pk=message.pk, provider_message_id=provider_message_id).update(
                send_claimed_at=None)
    return True


def record_send_failure(*, message: Message, code: str, title: str, reason: str = "") -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(send_claimed_at=None)
        _advance_status(message, Message.Status.FAILED, code, _failure_title(reason=reason, title=title))


def mark_unconfirmed(*, message_id: int, code: str, title: str) -> bool:
    """The provider may have the message: keep it from ever being sent again by itself. Only from
    queued without a provider id (a status callback may have confirmed it already)."""
    with transaction.atomic():
        changed = Message.objects.filter(
            pk=message_id, status=Message.Status.QUEUED, provider_message_id__isnull=True,
        ).update(status=Message.Status.UNCONFIRMED, send_claimed_at=None, error_code=code[:40],
                 error_title=title, status_changed_at=timezone.now())
        if changed:
            publish_message(event_types.MESSAGE_STATUS, Message.objects.get(pk=message_id))
    return bool(changed)


def expire_send_claims() -> int:
    """Claims older than the claim timeout: their worker died during or right after the call, so
    the provider may have the message. Unconfirmed, never re-sent (a sweep job)."""
    cutoff = timezone.now() - claim_timeout()
    stale = list(Message.objects.filter(status=Message.Status.QUEUED, provider_message_id__isnull=True,
                                        send_claimed_at__lt=cutoff).values_list("pk", flat=True)[:500])
    return sum(mark_unconfirmed(message_id=pk, code="interrupted",
                                title="The send was interrupted; the provider did not confirm it.")
               for pk in stale)


def offer_resends() -> int:
    """Unconfirmed messages nothing confirmed within CONVERSA_UNCONFIRMED_AFTER: the agent is now
    offered to resend them (announced once per message; a sweep job)."""
    now = timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.CONVERSA_UNCONFIRMED_AFTER)
    due = list(Message.objects.filter(status=Message.Status.UNCONFIRMED, resend_offered_at__isnull=True,
                                      status_changed_at__lt=cutoff).values_list("pk", flat=True)[:500])
    offered = 0
    for pk in due:
        with transaction.atomic():
            if Message.objects.filter(pk=pk, status=Message.Status.UNCONFIRMED,
                                      resend_offered_at__isnull=True).update(resend_offered_at=now):
                publish_message(event_types.MESSAGE_STATUS, Message.objects.get(pk=pk))
                offered += 1
    return offered


def resend_unconfirmed(*, conversation_id: int, message_id: int, user: User) -> Message:
    """The agent (or a supervisor of the campaign) decided: send an unconfirmed message again, as a
    new attempt, audited. The only way an unconfirmed message is ever sent twice is this choice."""
    with transaction.atomic():
        conversation = owned_conversation(conversation_id=conversation_id, user=user, allow_supervisor=True)
        message = conversation.messages.filter(pk=message_id, direction=Message.Direction.OUTBOUND).first()
        if message is None:
            raise NotFound(_("Message not found."))
        now = timezone.now()
        changed = Message.objects.filter(
            pk=message.pk, status=Message.Status.UNCONFIRMED, provider_message_id__isnull=True,
            resend_offered_at__isnull=False,  # not before a confirmation has had its time to come
        ).update(status=Message.Status.QUEUED, send_claimed_at=None, resend_offered_at=None, error_code="",
                 error_title="", next_attempt_at=now, status_changed_at=now)
        if not changed:
            raise Conflict(_("Only a message the provider did not confirm in time can be sent again."))
        message.refresh_from_db()
        audit.record(kind=AuditEntry.Kind.MESSAGE_RESENT, actor=user, conversation=conversation,
                     message=message.pk, attempt=message.send_attempts + 1)
        publish_message(event_types.MESSAGE_STATUS, message)
        from conversa.inbox import tasks  # the task module imports the actions it calls

        transaction.on_commit(lambda: tasks.send_outbound_message.enqueue(message.pk))
    return message
