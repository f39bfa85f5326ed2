"""The bulk send runner: a task that sends a job's recipients for a slice of time, at the line's
rate, a few calls in flight at once, then enqueues its own continuation (so pausing, cancelling and
other queues get their turn). Every write is an action (outreach.actions); this module talks to the
provider."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils import timezone
from django_tasks import task

from conversa.core import media as stored_media
from conversa.inbox.tasks import backoff_delay
from conversa.outreach import actions
from conversa.outreach.models import BulkRecipient, BulkSend
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import (
    OutboundMedia,
    ProviderAdapter,
    SendError,
    TemplateButtonValue,
    TemplateExtras,
    pooled_http,
)
from conversa.whatsapp.services import flag_line_problem

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    recipient_id: int
    provider_message_id: str = ""
    error: SendError | None = None
    crashed: str = ""  # an unexpected exception: the provider may have the message


def _header(job: BulkSend) -> OutboundMedia | None:
    """The job's media header, by a signed link made now (it outlives this slice, not the job)."""
    if not job.header_media:
        return None
    return OutboundMedia(kind=job.header_kind, mime=job.header_mime, filename=job.header_filename,
                         url=stored_media.signed_url(job.header_media.name, display_name=job.header_filename))


def _send_one(adapter: ProviderAdapter, job: BulkSend, recipient: BulkRecipient, client: httpx.Client,
              header: OutboundMedia | None) -> Outcome:
    template = job.template
    buttons = [TemplateButtonValue.from_stored(b) for b in recipient.buttons]
    try:
        with pooled_http(client):  # in the pool's thread: the context is per thread
            result = adapter.send_template(
                to=recipient.phone.lstrip("+"), template_name=template.name,
                template_id=template.provider_template_id, language=template.language,
                params=list(recipient.params), reference=actions.send_reference(recipient_id=recipient.pk),
                extras=TemplateExtras(param_names=template.param_names, header=header, buttons=buttons))
    except SendError as exc:
        return Outcome(recipient_id=recipient.pk, error=exc)
    except Exception as exc:  # a bug or an unexpected answer, possibly after the provider took it
        logger.exception("bulk send to recipient %s crashed", recipient.pk)
        return Outcome(recipient_id=recipient.pk, crashed=str(exc))
    return Outcome(recipient_id=recipient.pk, provider_message_id=result.provider_message_id)


def _record(job: BulkSend, runner: str, outcomes: list[Outcome]) -> float | None:
    """Write a round's results; the back-off (seconds) when the provider refused unprocessed."""
    actions.record_sent(sent={o.recipient_id: o.provider_message_id for o in outcomes if o.provider_message_id})
    throttled = [o for o in outcomes if o.error is not None and o.error.retryable]
    for outcome in outcomes:
        if outcome.crashed:
            actions.record_unconfirmed(recipient_id=outcome.recipient_id, code="internal",
                                       title=f"Could not confirm the send: {outcome.crashed}")
        elif outcome.error is not None and outcome.error.ambiguous:
            actions.record_unconfirmed(recipient_id=outcome.recipient_id, code=outcome.error.code,
                                       title=outcome.error.title)
        elif outcome.error is not None and not outcome.error.retryable:
            actions.record_failed(recipient_id=outcome.recipient_id, code=outcome.error.code,
                                  title=outcome.error.title)
            if outcome.error.line_unusable:
                flag_line_problem(job.line, outcome.error.title)
    if not throttled:
        return None
    first = throttled[0].error
    assert first is not None
    actions.record_retry(recipient_ids=[o.recipient_id for o in throttled], code=first.code, title=first.title)
    attempts = max(BulkRecipient.objects.filter(pk__in=[o.recipient_id for o in throttled])
                   .values_list("attempts", flat=True), default=1)
    return max(first.retry_after or 0.0, backoff_delay(attempts), 0.5)


@task(queue_name="bulk")
def run_bulk_send(job_id: int) -> str:
    """Send the job's next recipients for CONVERSA_BULK_SLICE_SECONDS, then hand over to the next
    slice. Safe to run any number of times, anywhere: one runner holds a job at a time."""
    runner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    job = actions.take_job(job_id=job_id, runner=runner)
    if job is None:
        return _not_taken(job_id)
    adapter = get_adapter(job.line)
    concurrency = max(1, min(settings.CONVERSA_BULK_CONCURRENCY, job.rate_per_second))
    deadline = time.monotonic() + settings.CONVERSA_BULK_SLICE_SECONDS
    sent = 0
    backoff_at = None
    header = _header(job)
    try:
        with (httpx.Client(limits=httpx.Limits(max_connections=concurrency, keepalive_expiry=5)) as client,
              ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk") as pool):
            while time.monotonic() < deadline:
                started = time.monotonic()
                batch = actions.claim_round(job_id=job.pk, runner=runner, size=concurrency)
                if not batch:
                    break
                outcomes = list(pool.map(lambda r: _send_one(adapter, job, r, client, header), batch))
                wait = _record(job, runner, outcomes)
                sent += sum(1 for o in outcomes if o.provider_message_id)
                if wait is not None:
                    backoff_at = actions.back_off(job_id=job.pk, runner=runner, seconds=wait,
                                                  reason=outcomes[0].error.title if outcomes[0].error else "")
                    break
                # The line's rate: this round's sends spread over at least len/rate seconds.
                pause = len(batch) / job.rate_per_second - (time.monotonic() - started)
                if pause > 0:
                    time.sleep(pause)  # throttling: nothing to wait for but the clock
    finally:
        now = actions.release_job(job_id=job.pk, runner=runner)
    if now is not None and now.status == BulkSend.Status.RUNNING:
        at = backoff_at or now.backoff_until
        (run_bulk_send.using(run_after=at) if at and at > timezone.now() else run_bulk_send).enqueue(job.pk)
    return f"sent {sent}" + (f"; backing off until {backoff_at.isoformat()}" if backoff_at else "")


def _not_taken(job_id: int) -> str:
    """Why this run had nothing to do. A live runner re-enqueues itself and a backing-off job has its
    continuation waiting; a job whose runner died, or whose line was busy with another job, is
    enqueued again by the sweep once nobody holds it (outreach.sweeps)."""
    job = BulkSend.objects.filter(pk=job_id).first()
    if job is None or job.status != BulkSend.Status.RUNNING:
        return "not running"
    now = timezone.now()
    if job.backoff_until and job.backoff_until > now:
        return f"backing off until {job.backoff_until.isoformat()}"
    if job.lease_until and job.lease_until > now:
        return f"held by {job.runner} until {job.lease_until.isoformat()}"
    return "its line is busy with another bulk send"
