"""Background work of the inbox: outbound sends (with retries) and inbound media downloads."""

from __future__ import annotations

import datetime
import logging
import random

from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import task

from conversa.contacts.phones import wa_id
from conversa.core import media as stored_media
from conversa.inbox import services
from conversa.inbox.models import Message
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import ListRow, OutboundList, OutboundMedia, SendError, SendResult
from conversa.whatsapp.services import clear_line_problem, flag_line_problem

logger = logging.getLogger(__name__)
# A claim older than this belongs to a worker that died mid-send.
CLAIM_TIMEOUT = datetime.timedelta(minutes=5)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at 10 minutes."""
    ceiling = min(600.0, settings.CONVERSA_SEND_BACKOFF_BASE ** attempt)
    return random.uniform(ceiling / 2, ceiling)


def _claim(message_id: int) -> Message | None:
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
    message = _claim(message_id)
    if message is None:
        return "skipped: already sent, failed or being sent"
    try:
        result = _deliver(message)
    except SendError as exc:
        if exc.retryable and message.send_attempts < settings.CONVERSA_SEND_MAX_ATTEMPTS:
            delay = backoff_delay(message.send_attempts)
            run_after = timezone.now() + datetime.timedelta(seconds=delay)
            Message.objects.filter(pk=message.pk).update(send_claimed_at=None, next_attempt_at=run_after,
                                                         error_code=exc.code, error_title=exc.title)
            send_outbound_message.using(run_after=run_after).enqueue(message.pk)
            logger.warning("send of message %s failed (%s); retry %s in %.1fs", message.pk, exc,
                           message.send_attempts, delay)
            return f"retry in {delay:.1f}s: {exc}"
        services.record_send_failure(message, code=exc.code, title=exc.title, reason=exc.reason)
        if exc.line_unusable:
            flag_line_problem(message.conversation.line, exc.title)
        return f"failed: {exc}"
    except Exception as exc:
        # A bug or an unexpected answer: the agent must see it failed, not wait forever.
        logger.exception("send of message %s crashed", message.pk)
        services.record_send_failure(message, code="internal", title=f"Could not send: {exc}")
        raise
    services.record_send_success(message, result.provider_message_id)
    clear_line_problem(message.conversation.line)
    return f"sent: {result.provider_message_id}"


def _media_limit(kind: str) -> int:
    limits = settings.CONVERSA_MEDIA_LIMITS
    key = "image" if kind == "sticker" else kind
    return int(limits[key][0] if key in limits else max(limit for limit, _types in limits.values()))


def _record_media_failure(message: Message, *, attempt: int, error: str, final: bool) -> None:
    """Shown on the message: the attachment is still coming (retry) or could not be had (final)."""
    payload = {**message.payload, "media_attempts": attempt, "media_error": error}
    if final:
        payload["media_failed"] = True
    Message.objects.filter(pk=message.pk).update(payload=payload)
    message.payload = payload
    from conversa.inbox.events import publish_message

    publish_message("message.updated", message)


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
        _record_media_failure(message, attempt=attempt, error=exc.title, final=not retry)
        if retry:
            run_after = timezone.now() + datetime.timedelta(seconds=backoff_delay(attempt))
            fetch_inbound_media.using(run_after=run_after).enqueue(message.pk)
            return f"retry: {exc}"
        return f"gave up: {exc}"
    except Exception as exc:
        # A bug or an unexpected answer: the agent must see the attachment is missing.
        logger.exception("media download of message %s crashed", message.pk)
        _record_media_failure(message, attempt=attempt, error=f"Could not download the file: {exc}", final=True)
        raise
    declared = message.media_mime or mime
    sniffed = stored_media.sniff_bytes(content, declared_mime=declared)
    message.media.save(stored_media.new_storage_name(sniffed), ContentFile(content), save=False)
    # What the file is when we could tell; else what the provider declared (informational only:
    # it is served as application/octet-stream, as an attachment).
    message.media_mime = sniffed.mime if sniffed.known else declared.split(";")[0].strip()[:120]
    message.media_filename = stored_media.clean_display_name(message.media_filename)
    message.media_provider_id = ""
    message.payload = {k: v for k, v in message.payload.items() if k not in ("media_error", "media_failed")}
    message.save(update_fields=["media", "media_mime", "media_filename", "media_provider_id", "payload"])
    from conversa.inbox.events import publish_message

    publish_message("message.updated", message)
    return f"stored {len(content)} bytes"
