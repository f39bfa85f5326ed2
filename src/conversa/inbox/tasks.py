"""Background work of the inbox: outbound sends (with retries) and inbound media downloads. The
tasks talk to the provider; every write they cause is an action (inbox.actions.delivery/inbound)."""

from __future__ import annotations

import datetime
import logging
import random

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from conversa.contacts.phones import wa_id
from conversa.core import media as stored_media
from conversa.inbox.actions import delivery
from conversa.inbox.actions.delivery import CLAIM_TIMEOUT as CLAIM_TIMEOUT
from conversa.inbox.actions.inbound import record_media_failure, store_inbound_media
from conversa.inbox.models import Message
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import ListRow, OutboundList, OutboundMedia, SendError, SendResult
from conversa.whatsapp.services import clear_line_problem, flag_line_problem

logger = logging.getLogger(__name__)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at 10 minutes."""
    ceiling = min(600.0, settings.CONVERSA_SEND_BACKOFF_BASE ** attempt)
    return random.uniform(ceiling / 2, ceiling)


def _deliver(message: Message) -> SendResult:
    line = message.conversation.line
    adapter = get_adapter(line)
    to = wa_id(message.conversation.customer_phone)
    reply_to = message.reply_to.provider_message_id if message.reply_to and message.reply_to.provider_message_id else ""
    if message.kind == Message.Kind.TEMPLATE and message.template:
        return adapter.send_template(
            to=to, template_name=message.template.name, template_id=message.template.provider_template_id,
            language=message.template.language, params=list(message.payload.get("params", [])),
        )
    if message.kind == Message.Kind.INTERACTIVE and message.payload.get("list"):
        data = dict(message.payload["list"])
        rows = [ListRow(**row) for row in data.pop("rows", [])]
        return adapter.send_list(to=to, menu=OutboundList(rows=rows, **data))
    if message.media:
        # A signed, expiring link to this one file: the provider fetches it without a login.
        link = stored_media.signed_url(message.media.name, display_name=message.media_filename)
        media = OutboundMedia(kind=message.kind, url=link, mime=message.media_mime,
                              filename=message.media_filename, caption=message.body)
        return adapter.send_media(to=to, media=media, reply_to=reply_to)
    return adapter.send_text(to=to, text=message.body, reply_to=reply_to)


@task(queue_name="outbound")
def send_outbound_message(message_id: int) -> str:
    message = delivery.claim_for_send(message_id=message_id)
    if message is None:
        return "skipped: already sent, failed or being sent"
    try:
        result = _deliver(message)
    except SendError as exc:
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
        # A bug or an unexpected answer: the agent must see it failed, not wait forever.
        logger.exception("send of message %s crashed", message.pk)
        delivery.record_send_failure(message=message, code="internal", title=f"Could not send: {exc}")
        raise
    delivery.record_send_success(message=message, provider_message_id=result.provider_message_id)
    clear_line_problem(message.conversation.line)
    return f"sent: {result.provider_message_id}"


def _media_limit(kind: str) -> int:
    limits = settings.CONVERSA_MEDIA_LIMITS
    key = "image" if kind == "sticker" else kind
    return int(limits[key][0] if key in limits else max(limit for limit, _types in limits.values()))


@task(queue_name="media")
def fetch_inbound_media(message_id: int) -> str:
    """Download a customer's media (the message text is already stored; this only adds the file).
    The file is stored under a random name with the extension of its sniffed type; the customer's
    file name is only the display name. A failure is recorded on the message: retried with back-off
    when transient, marked failed when permanent."""
    message = Message.objects.select_related("conversation__line__provider").get(pk=message_id)
    if not message.media_provider_id or message.media or message.payload.get("media_failed"):
        return "nothing to fetch"
    adapter = get_adapter(message.conversation.line)
    attempt = int(message.payload.get("media_attempts", 0)) + 1
    try:
        content, mime = adapter.download_media(message.media_provider_id, max_bytes=_media_limit(message.kind))
    except SendError as exc:
        retry = attempt < settings.CONVERSA_SEND_MAX_ATTEMPTS and exc.retryable
        record_media_failure(message_id=message.pk, attempt=attempt, error=exc.title, final=not retry)
        if retry:
            run_after = timezone.now() + datetime.timedelta(seconds=backoff_delay(attempt))
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
