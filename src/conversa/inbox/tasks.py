"""Background work of the inbox: outbound sends (with retries) and inbound media downloads. The
tasks talk to the provider; every write they cause is an action (inbox.actions.delivery/inbound)."""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django import db
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django_tasks import task

from conversa.contacts.phones import wa_id
from conversa.core import media as stored_media
from conversa.inbox.actions import delivery
from conversa.inbox.actions.inbound import begin_media_download, record_media_failure, store_inbound_media
from conversa.inbox.models import Message
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import (
    ListRow,
    OutboundList,
    OutboundMedia,
    SendError,
    SendResult,
    TemplateButtonValue,
    TemplateExtras,
)
from conversa.whatsapp.services import clear_line_problem, flag_line_problem

logger = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at 10 minutes."""
    ceiling = min(600.0, settings.CONVERSA_SEND_BACKOFF_BASE ** attempt)
    return random.uniform(ceiling / 2, ceiling)


def _deliver(message: Message) -> SendResult:
    line = message.conversation.line
    adapter = get_adapter(line)
    conversation = message.conversation
    # A customer known only by the provider's user id is addressed by it (the adapter knows how).
    to = wa_id(conversation.customer_phone) if conversation.customer_phone else conversation.customer_user_id
    reference = delivery.send_reference(message_id=message.pk)
    reply_to = message.reply_to.provider_message_id if message.reply_to and message.reply_to.provider_message_id else ""
    if message.kind == Message.Kind.TEMPLATE and message.template:
        # A template message's attachment is its media header.
        header = (OutboundMedia(kind=str(message.payload.get("header_kind") or _media_kind(message.media_mime)),
                                url=stored_media.signed_url(message.media.name, display_name=message.media_filename),
                                mime=message.media_mime, filename=message.media_filename)
                  if message.media else None)
        return adapter.send_template(
            to=to, template_name=message.template.name, template_id=message.template.provider_template_id,
            language=message.template.language, params=list(message.payload.get("params", [])),
            reference=reference, extras=TemplateExtras(
                param_names=message.template.param_names, header=header,
                buttons=[TemplateButtonValue.from_stored(b) for b in message.payload.get("buttons", [])]),
        )
    if message.kind == Message.Kind.INTERACTIVE and message.payload.get("list"):
        data = dict(message.payload["list"])
        rows = [ListRow(**row) for row in data.pop("rows", [])]
        return adapter.send_list(to=to, menu=OutboundList(rows=rows, **data), reference=reference)
    if message.media:
        # A signed, expiring link to this one file: the provider fetches it without a login.
        link = stored_media.signed_url(message.media.name, display_name=message.media_filename)
        media = OutboundMedia(kind=message.kind, url=link, mime=message.media_mime,
                              filename=message.media_filename, caption=message.body)
        return adapter.send_media(to=to, media=media, reply_to=reply_to, reference=reference)
    return adapter.send_text(to=to, text=message.body, reply_to=reply_to, reference=reference)


def _media_kind(mime: str) -> str:
    return "image" if mime.startswith("image/") else "video" if mime.startswith("video/") else "document"


def _write_with_retries(what: str, write: Callable[[], T]) -> T | None:
    """A write after the provider call, retried while the database is away (a restart, a failover)
    for up to CONVERSA_SEND_RECORD_RETRY_FOR seconds: what the provider said is only in memory, and
    losing it must never lead to a second send. None if it never went through."""
    deadline = time.monotonic() + settings.CONVERSA_SEND_RECORD_RETRY_FOR
    delay = 0.2
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            db.connection.close()  # a broken connection is not reused; the next query reconnects
            if time.monotonic() + delay > deadline:
                logger.error("could not record %s: %s", what, exc)
                return None
            logger.warning("recording %s failed (%s); again in %.1fs", what, exc, delay)
            time.sleep(delay)  # backing off from a database that is down: nothing to wait on
            delay = min(delay * 2, 5.0)


def _unconfirmed(message: Message, *, code: str, title: str) -> str:
    # If even this write fails the claim stays, and the sweep marks it unconfirmed when it expires.
    _write_with_retries(f"message {message.pk} as unconfirmed",
                        lambda: delivery.mark_unconfirmed(message_id=message.pk, code=code, title=title))
    return f"unconfirmed: {code} {title}"


@task(queue_name="outbound")
def send_outbound_message(message_id: int) -> str:
    """Send once. Repeated by itself only when the provider provably did not get the request; an
    ambiguous outcome leaves the message unconfirmed for the status callback (docs/decisions.md #39)."""
    message = delivery.claim_for_send(message_id=message_id)
    if message is None:
        return "skipped: already sent, failed, unconfirmed or being sent"
    try:
        result = _deliver(message)
    except SendError as exc:
        if exc.ambiguous:
            logger.warning("send of message %s not confirmed (%s): not sent again by itself", message.pk, exc)
            return _unconfirmed(message, code=exc.code, title=exc.title)
        if exc.retryable and message.send_attempts < settings.CONVERSA_SEND_MAX_ATTEMPTS:
            delay = backoff_delay(message.send_attempts)
            run_after = timezone.now() + datetime.timedelta(seconds=delay)
            delivery.schedule_retry(message_id=message.pk, run_after=run_after, code=exc.code, title=exc.title)
            send_outbound_message.using(run_after=run_after).enqueue(message.pk)
            logger.warning("send of message %s failed (%s); retry %s in %.1fs", message.pk, exc,
                           message.send_attempts, delay)
            return f"retry in {delay:.1f}s: {exc}"
        delivery.record_send_failure(message=message, code=exc.code, title=exc.title, reason=exc.reason)
        if exc.line_unusable:
            flag_line_problem(message.conversation.line, exc.title)
        return f"failed: {exc}"
    except Exception as exc:
        # A bug or an unexpected answer, possibly after the provider took the message: the agent
        # must see it is not confirmed (and decide), not wait forever, and it is never re-sent.
        logger.exception("send of message %s crashed", message.pk)
        _unconfirmed(message, code="internal", title=f"Could not confirm the send: {exc}")
        raise
    provider_id = result.provider_message_id
    recorded = _write_with_retries(
        f"the send of message {message.pk} (provider id {provider_id})",
        lambda: delivery.record_send_success(message=message, provider_message_id=provider_id))
    if recorded is None:
        return _unconfirmed(message, code="not-recorded",
                            title=f"Sent, but the result could not be recorded (provider id {provider_id}).")
    clear_line_problem(message.conversation.line)
    return f"sent: {provider_id}"


def _media_limit(kind: str) -> int:
    limits = settings.CONVERSA_MEDIA_LIMITS
    key = "image" if kind == "sticker" else kind
    return int(limits[key][0] if key in limits else max(limit for limit, _types in limits.values()))


@task(queue_name="media")
def fetch_inbound_media(message_id: int) -> str:
    """Download a customer's media (the message text is already stored; this only adds the file).
    The file is stored under a random name with the extension of its sniffed type; the customer's
    file name is only the display name. Each attempt is counted before it starts (a worker killed
    mid-download still used one; the media sweep tries again after the back-off). A failure is
    recorded on the message: retried with back-off when transient, marked failed when permanent or
    after CONVERSA_SEND_MAX_ATTEMPTS (the console then offers a retry)."""
    max_attempts = settings.CONVERSA_SEND_MAX_ATTEMPTS
    message = begin_media_download(message_id=message_id, max_attempts=max_attempts, backoff=backoff_delay)
    if message is None:
        return "nothing to fetch"
    adapter = get_adapter(message.conversation.line)
    attempt = int(message.payload["media_attempts"])
    try:
        content, mime = adapter.download_media(message.media_provider_id, max_bytes=_media_limit(message.kind))
    except SendError as exc:
        retry = attempt < max_attempts and exc.retryable
        run_after = timezone.now() + datetime.timedelta(seconds=backoff_delay(attempt)) if retry else None
        record_media_failure(message_id=message.pk, attempt=attempt, error=exc.title, final=not retry,
                             retry_at=run_after)
        if run_after is not None:
            fetch_inbound_media.using(run_after=run_after).enqueue(message.pk)
            return f"retry: {exc}"
        return f"gave up: {exc}"
    except Exception as exc:
        # A bug or an unexpected answer: the agent must see the attachment is missing.
        logger.exception("media download of message %s crashed", message.pk)
        record_media_failure(message_id=message.pk, attempt=attempt, error=f"Could not download the file: {exc}",
                             final=True)
        raise
    store_inbound_media(message_id=message.pk, content=content, provider_mime=mime)
    return f"stored {len(content)} bytes"



@task(queue_name="outbound")
def send_read_receipt(conversation_id: int) -> str:
    """The agent opened the conversation: the customer's latest message is marked read at the
    provider (which marks the earlier ones read too). Best effort: a failure is logged, never
    retried — a missed blue tick harms nobody."""
    message = (Message.objects.select_related("conversation__line__provider")
               .filter(conversation_id=conversation_id, direction=Message.Direction.INBOUND,
                       provider_message_id__isnull=False)
               .exclude(provider_message_id__startswith="derived:").order_by("-created_at", "-id").first())
    if message is None or not message.conversation.line.send_read_receipts or not message.provider_message_id:
        return "nothing to mark"
    try:
        get_adapter(message.conversation.line).mark_read(provider_message_id=message.provider_message_id)
    except SendError as exc:
        logger.warning("read receipt for message %s not sent: %s", message.pk, exc)
        return f"not sent: {exc}"
    return f"marked {message.provider_message_id} read"
