"""Writes of bulk sends, each one verb in one transaction: create a job (its recipients stored
before anything is sent), pause / resume / cancel it, the runner's claim of a round of recipients
and the record of what the provider said, delivery statuses, opt-outs and replies.

Exactly once: a recipient is claimed (`sending`, with `claimed_at`) by a conditional update right
before its provider call; only `pending` rows are ever claimed, so a recipient is never sent twice
by itself. A runner that dies leaves its claims behind: whoever takes the job next marks them
`unconfirmed` (the provider may have the message; its status webhook, which echoes our reference,
confirms it), never sends them again (docs/decisions.md)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.contacts.selectors import contact_for_customer
from conversa.core import media as stored_media
from conversa.core.errors import Conflict
from conversa.inbox.models import Conversation, Message
from conversa.outreach import selectors
from conversa.outreach.models import BulkRecipient, BulkSend, OptOut
from conversa.whatsapp.adapters.base import StatusUpdate
from conversa.whatsapp.models import Line, PendingStatus

Status = BulkRecipient.Status
REFERENCE_PREFIX = "bulk:"
# What a customer writes to stop bulk messages (the whole message, any case, optional punctuation).
OPT_OUT_WORDS = {"stop", "baja", "unsubscribe", "cancelar", "parar", "no enviar", "stop all"}
STATUS_RANK = {Status.PENDING: 0, Status.SENDING: 1, Status.UNCONFIRMED: 1, Status.SENT: 2,
               Status.DELIVERED: 3, Status.READ: 4}
FAILABLE = [Status.PENDING, Status.SENDING, Status.UNCONFIRMED, Status.SENT]
BATCH = 1000


def send_reference(*, recipient_id: int) -> str:
    return f"{REFERENCE_PREFIX}{recipient_id}"


def recipient_id_from_reference(reference: str) -> int | None:
    number = reference[len(REFERENCE_PREFIX):] if reference.startswith(REFERENCE_PREFIX) else ""
    return int(number) if number.isdigit() and len(number) < 19 else None


def _enqueue_run(job_id: int, *, at: datetime.datetime | None = None) -> None:
    from conversa.outreach import tasks  # the task module imports these actions

    task = tasks.run_bulk_send.using(run_after=at) if at is not None else tasks.run_bulk_send
    transaction.on_commit(lambda: task.enqueue(job_id))


# --------------------------------------------------------------------------------- the job's life
def create_bulk_send(*, user: User, request: selectors.BulkRequest) -> BulkSend:
    """Store the job and every recipient (those skipped with their reason), then start it."""
    plan = selectors.plan_bulk_send(user=user, request=request)
    with transaction.atomic():
        job = BulkSend.objects.create(
            name=request.name.strip()[:200], line=plan.line, campaign=plan.campaign, template=plan.template,
            params=request.params, source=request.source,
            contact_database=plan.database if request.source == BulkSend.Source.DATABASE else None,
            contact_filter=request.contact_filter.as_dict(),
            source_name=(request.csv_file.name or "")[:255] if request.csv_file else "",
            skip_open_conversations=request.skip_open_conversations, rate_per_second=plan.rate, created_by=user,
            button_params=request.button_params)
        if plan.header is not None:
            # Stored as an outbound message's file is: a random name, the sniffed type.
            header = plan.header
            job.header_kind, job.header_mime = header.kind, header.sniffed.mime
            job.header_filename = header.display_name
            job.header_media.save(stored_media.new_storage_name(header.sniffed), header.upload, save=False)
            job.save(update_fields=["header_kind", "header_mime", "header_filename", "header_media"])
        now = timezone.now()
        rows = [BulkRecipient(job=job, line=plan.line, row=r.row, phone=r.phone, contact_id=r.contact_id,
                              params=r.params, buttons=r.buttons, body=r.body, reason=r.reason, error_title=r.error,
                              status=Status.SKIPPED if r.reason else Status.PENDING,
                              status_changed_at=now if r.reason else None)
                for r in plan.recipients]
        for start in range(0, len(rows), BATCH):
            BulkRecipient.objects.bulk_create(rows[start:start + BATCH])
        if not plan.to_send:
            BulkSend.objects.filter(pk=job.pk).update(status=BulkSend.Status.DONE, finished_at=now)
            job.refresh_from_db()
        else:
            _enqueue_run(job.pk)
    return job


def pause_bulk_send(*, user: User, job_id: int) -> BulkSend:
    """Stop sending after the round in flight; the rest waits."""
    job = selectors.get_job(user=user, job_id=job_id)
    with transaction.atomic():
        if not BulkSend.objects.filter(pk=job.pk, status=BulkSend.Status.RUNNING).update(
                status=BulkSend.Status.PAUSED):
            raise Conflict(_("Only a running bulk send can be paused."))
    job.refresh_from_db()
    return job


def resume_bulk_send(*, user: User, job_id: int) -> BulkSend:
    """Go on with the recipients not yet claimed (those sent stay sent)."""
    job = selectors.get_job(user=user, job_id=job_id)
    with transaction.atomic():
        if not BulkSend.objects.filter(pk=job.pk, status=BulkSend.Status.PAUSED).update(
                status=BulkSend.Status.RUNNING):
            raise Conflict(_("Only a paused bulk send can be resumed."))
        _enqueue_run(job.pk)
    job.refresh_from_db()
    return job


def cancel_bulk_send(*, user: User, job_id: int) -> BulkSend:
    """Nobody else gets it: the recipients not yet claimed are skipped as cancelled."""
    job = selectors.get_job(user=user, job_id=job_id)
    now = timezone.now()
    with transaction.atomic():
        if not BulkSend.objects.filter(pk=job.pk, status__in=[BulkSend.Status.RUNNING, BulkSend.Status.PAUSED]).update(
                status=BulkSend.Status.CANCELLED, finished_at=now):
            raise Conflict(_("This bulk send has already ended."))
        BulkRecipient.objects.filter(job=job, status=Status.PENDING).update(
            status=Status.SKIPPED, reason=BulkRecipient.Reason.CANCELLED, status_changed_at=now)
    job.refresh_from_db()
    return job


# --------------------------------------------------------------------------------- the runner's side
def take_job(*, job_id: int, runner: str) -> BulkSend | None:
    """The right to send this job's next rounds, for CONVERSA_BULK_LEASE_SECONDS: only while it runs,
    is not backing off, and no other live runner holds it or another job of its line (the rate is
    the line's). Claims a dead runner left are marked unconfirmed."""
    now = timezone.now()
    with transaction.atomic():
        job = BulkSend.objects.filter(pk=job_id).first()
        if job is None:
            return None
        Line.objects.select_for_update().filter(pk=job.line_id).first()  # one taker per line at a time
        line_busy = BulkSend.objects.filter(line_id=OuterRef("line_id"), status=BulkSend.Status.RUNNING,
                                            lease_until__gt=now).exclude(pk=OuterRef("pk"))
        taken = (BulkSend.objects.filter(pk=job_id, status=BulkSend.Status.RUNNING)
                 .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now) | Q(runner=runner))
                 .filter(Q(backoff_until__isnull=True) | Q(backoff_until__lte=now))
                 .exclude(Exists(line_busy))
                 .update(runner=runner, lease_until=now + _lease()))
        if not taken:
            return None
        BulkRecipient.objects.filter(job_id=job_id, status=Status.SENDING).update(
            status=Status.UNCONFIRMED, claimed_at=None, error_code="interrupted", status_changed_at=now,
            error_title="The send was interrupted; the provider did not confirm it.")
    return BulkSend.objects.select_related("line__provider", "template").get(pk=job_id)


def _lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.CONVERSA_BULK_LEASE_SECONDS)


def claim_round(*, job_id: int, runner: str, size: int) -> list[BulkRecipient]:
    """The next recipients to send, claimed (`sending`) right before their calls, after the send-time
    checks (opted out or busy since the job was created: skipped). Renews the runner's lease; []
    when the job is no longer its own to run (paused, cancelled, taken over) or nothing is left."""
    now = timezone.now()
    with transaction.atomic():
        job = BulkSend.objects.filter(pk=job_id, runner=runner, status=BulkSend.Status.RUNNING).first()
        if job is None or not BulkSend.objects.filter(pk=job_id, runner=runner).update(lease_until=now + _lease()):
            return []
        candidates = list(BulkRecipient.objects.select_for_update(skip_locked=True)
                          .filter(job_id=job_id, status=Status.PENDING).order_by("row", "id")[:size])
        phones = {r.phone for r in candidates}
        opted_out = selectors.opted_out_phones(line=job.line_id, phones=phones)
        busy = (selectors.phones_in_open_conversations(line=job.line_id, phones=phones)
                if job.skip_open_conversations else set())
        for reason, skipped in ((BulkRecipient.Reason.OPTED_OUT, opted_out),
                                (BulkRecipient.Reason.OPEN_CONVERSATION, busy)):
            if skipped:
                BulkRecipient.objects.filter(job_id=job_id, status=Status.PENDING, phone__in=skipped).update(
                    status=Status.SKIPPED, reason=reason, status_changed_at=now)
        chosen = [r.pk for r in candidates if r.phone not in opted_out and r.phone not in busy]
        BulkRecipient.objects.filter(pk__in=chosen, status=Status.PENDING).update(
            status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    return list(BulkRecipient.objects.filter(pk__in=chosen, status=Status.SENDING, claimed_at=now))


def record_sent(*, sent: dict[int, str]) -> None:
    """The provider accepted these (recipient id → its message id): bound and `sent`, unless a status
    webhook bound them first; statuses that arrived before this are applied. The rows are locked,
    so a status webhook for one of them waits for this and then moves it on."""
    if not sent:
        return
    now = timezone.now()
    with transaction.atomic():
        rows = list(BulkRecipient.objects.select_for_update().filter(
            pk__in=list(sent), provider_message_id__isnull=True))
        for row in rows:
            row.provider_message_id, row.sent_at = sent[row.pk], now
            if row.status in (Status.SENDING, Status.UNCONFIRMED):
                row.status, row.claimed_at, row.status_changed_at = Status.SENT, None, now
                row.error_code = row.error_title = ""
        BulkRecipient.objects.bulk_update(rows, ["provider_message_id", "sent_at", "status", "claimed_at",
                                                 "status_changed_at", "error_code", "error_title"])
        line_ids = {row.line_id for row in rows}
        pending = list(PendingStatus.objects.filter(line_id__in=line_ids, provider_message_id__in=list(sent.values())))
        by_provider_id = {v: k for k, v in sent.items()}
        for status in sorted(pending, key=lambda p: STATUS_RANK.get(p.status, 9)):  # type: ignore[call-overload]
            _advance(recipient_id=by_provider_id[status.provider_message_id], status=status.status,
                     code=status.error_code, title=status.error_title)
        PendingStatus.objects.filter(pk__in=[p.pk for p in pending]).delete()


def record_retry(*, recipient_ids: list[int], code: str, title: str) -> int:
    """These provably did not reach the provider (a 429, no connection): back to the queue, unless
    they used up CONVERSA_SEND_MAX_ATTEMPTS (then failed). Returns how many are queued again."""
    now = timezone.now()
    with transaction.atomic():
        claimed = BulkRecipient.objects.filter(pk__in=recipient_ids, status=Status.SENDING)
        claimed.filter(attempts__gte=settings.CONVERSA_SEND_MAX_ATTEMPTS).update(
            status=Status.FAILED, claimed_at=None, error_code=code[:40], error_title=title, status_changed_at=now)
        return claimed.update(status=Status.PENDING, claimed_at=None, error_code=code[:40], error_title=title)


def record_failed(*, recipient_id: int, code: str, title: str) -> None:
    with transaction.atomic():
        _advance(recipient_id=recipient_id, status=Status.FAILED, code=code, title=title)
        BulkRecipient.objects.filter(pk=recipient_id).update(claimed_at=None)


def record_unconfirmed(*, recipient_id: int, code: str, title: str) -> None:
    """The provider may have it (a timeout after the request was written): never sent again."""
    BulkRecipient.objects.filter(pk=recipient_id, status=Status.SENDING).update(
        status=Status.UNCONFIRMED, claimed_at=None, error_code=code[:40], error_title=title,
        status_changed_at=timezone.now())


def back_off(*, job_id: int, runner: str, seconds: float, reason: str) -> datetime.datetime:
    """The provider asked us to slow down: nothing of this job is sent for `seconds`."""
    until = timezone.now() + datetime.timedelta(seconds=seconds)
    BulkSend.objects.filter(pk=job_id, runner=runner).update(backoff_until=until, backoff_reason=reason[:200])
    return until


def release_job(*, job_id: int, runner: str) -> BulkSend | None:
    """The runner's slice ends: the lease is given up, and a job with nobody left to send is done.
    The job as it is now (None if gone)."""
    now = timezone.now()
    with transaction.atomic():
        BulkSend.objects.filter(pk=job_id, runner=runner).update(runner="", lease_until=None)
        left = BulkRecipient.objects.filter(job_id=job_id, status__in=[Status.PENDING, Status.SENDING]).exists()
        if not left:
            BulkSend.objects.filter(pk=job_id, status=BulkSend.Status.RUNNING).update(
                status=BulkSend.Status.DONE, finished_at=now, backoff_until=None, backoff_reason="")
    return BulkSend.objects.filter(pk=job_id).first()


# --------------------------------------------------------------------------------- statuses
def _advance(*, recipient_id: int, status: str, code: str = "", title: str = "") -> bool:
    now = timezone.now()
    rows = BulkRecipient.objects.filter(pk=recipient_id)
    if status == Status.FAILED:
        return bool(rows.filter(status__in=FAILABLE).update(status=status, error_code=code[:40],
                                                            error_title=title or "Failed", status_changed_at=now))
    if status not in STATUS_RANK:
        return False
    earlier = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[Status(status)]]
    return bool(rows.filter(status__in=earlier).update(status=status, status_changed_at=now))


def apply_bulk_status(line: Line, update: StatusUpdate) -> bool:
    """A delivery status the inbox does not know (registered with inbox.hooks): a bulk message's,
    found by the reference it echoes or by the provider's id; moved forward only. A status that
    beats our own record of the send binds the provider's id."""
    recipient_id = recipient_id_from_reference(update.reference)
    ids = [i for i in [update.provider_message_id, *update.alternate_ids] if i]
    rows = BulkRecipient.objects.filter(line=line)
    if recipient_id is not None:
        recipient = rows.filter(pk=recipient_id).first()
    elif ids:
        recipient = rows.filter(provider_message_id__in=ids).first()
    else:
        return False
    if recipient is None:
        return False
    mapped = {"played": Status.READ}.get(update.status, update.status)
    with transaction.atomic():
        if recipient.provider_message_id is None and update.provider_message_id:
            try:
                with transaction.atomic():
                    BulkRecipient.objects.filter(pk=recipient.pk, provider_message_id__isnull=True).update(
                        provider_message_id=update.provider_message_id, sent_at=timezone.now(), claimed_at=None)
            except IntegrityError:
                pass
            _advance(recipient_id=recipient.pk, status=Status.SENT)
        _advance(recipient_id=recipient.pk, status=mapped, code=update.error_code, title=update.error_title)
    return True


# --------------------------------------------------------------------------------- customers' side
def is_opt_out(text: str) -> bool:
    return re.sub(r"[^\w\s]", "", text).strip().lower() in OPT_OUT_WORDS


def opt_out(*, line: Line | int, phone: str, keyword: str = "") -> bool:
    """Add a number to the line's opt-out list (True when it was not on it)."""
    with transaction.atomic():
        _, created = OptOut.objects.get_or_create(line_id=line if isinstance(line, int) else line.pk, phone=phone,
                                                  defaults={"keyword": keyword[:40]})
    return created


def on_customer_message(conversation: Conversation, message: Message, created: bool) -> bool:
    """Registered with inbox.hooks, inside receive_inbound's transaction: "STOP"/"BAJA" adds the
    customer to the line's opt-outs; the first message of a new conversation from a customer a bulk
    message went to recently is her reply: the conversation goes to the job's campaign's general
    inbox (True: routed, no menu) and is linked to the job."""
    return bool(on_customer_messages([(conversation, message, created)]))


def on_customer_messages(stored: Sequence[tuple[Conversation, Message, bool]]) -> set[int]:
    """`on_customer_message` for a webhook batch's messages stored set-based, in order (registered
    with inbox.hooks as its batch form): the bulk messages its new conversations answer are looked
    up in one query instead of one per new customer. The ids of the conversations it routed."""
    for conversation, message, _created in stored:
        if conversation.customer_phone and message.kind == Message.Kind.TEXT and is_opt_out(message.body):
            opt_out(line=conversation.line_id, phone=conversation.customer_phone, keyword=message.body.strip())
    opened = [conversation for conversation, _message, created in stored if created and conversation.customer_phone]
    if not opened:
        return set()
    since = timezone.now() - datetime.timedelta(hours=settings.CONVERSA_BULK_REPLY_HOURS)
    recipients = selectors.recipients_to_link(
        customers=[(conversation.line_id, conversation.customer_phone) for conversation in opened], since=since)
    routed: set[int] = set()
    for conversation in opened:
        recipient = recipients.pop((conversation.line_id, conversation.customer_phone), None)
        if recipient is not None:
            _link_reply(conversation=conversation, recipient=recipient)
            routed.add(conversation.pk)
    return routed


def _link_reply(*, conversation: Conversation, recipient: BulkRecipient) -> None:
    """The new conversation is the recipient's reply: linked to it, and moved to its job's campaign."""
    BulkRecipient.objects.filter(pk=recipient.pk, replied_at__isnull=True).update(
        replied_at=timezone.now(), reply_conversation=conversation)
    campaign = recipient.job.campaign
    if conversation.campaign_id != campaign.pk:
        conversation.campaign = campaign
        conversation.contact = contact_for_customer(database_id=campaign.contact_database_id,
                                                    phone=conversation.customer_phone,
                                                    user_id=conversation.customer_user_id)
        conversation.save(update_fields=["campaign", "contact"])
