"""Webhook ingestion (store first, process in a task) and template sync."""

from __future__ import annotations

import datetime
import hashlib
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import MalformedPayload, TemplateInfo
from conversa.whatsapp.models import Line, MessageTemplate, WebhookEvent

logger = logging.getLogger(__name__)
# Headers worth keeping with the raw event (never authorization material).
KEPT_HEADERS = ("content-type", "user-agent", "x-hub-signature-256", "x-conversa-signature")


def store_webhook(line: Line, body: bytes, headers: dict[str, str]) -> tuple[WebhookEvent, bool]:
    """Durably store a verified callback; (event, created). A byte-identical replay is stored once."""
    digest = hashlib.sha256(body).hexdigest()
    kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS}
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(line=line, provider_kind=line.provider.kind, body=body,
                                                body_sha256=digest, headers=kept)
    except IntegrityError:
        return WebhookEvent.objects.get(line=line, body_sha256=digest), False
    from conversa.whatsapp import tasks

    transaction.on_commit(lambda: tasks.process_webhook_event.enqueue(event.pk))
    return event, True


def process_webhook_event(event_id: int) -> str:
    """Parse a stored callback and apply every message, status and template update it carries.

    Each step is idempotent (messages are unique per provider id, statuses only move forward), so
    processing an event twice, or after a crash half-way, changes nothing more.
    """
    from conversa.inbox import services as inbox

    event = WebhookEvent.objects.select_related("line__provider", "line__campaign").get(pk=event_id)
    if event.processed_at:
        return "already processed"
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
    line = event.line
    try:
        parsed = get_adapter(line).read(bytes(event.body))
    except MalformedPayload as exc:
        # Unreadable for good (the endpoint refuses these now; older rows may hold some): retrying
        # cannot help, so the event is closed with the reason.
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(),
                                                        error=f"unreadable: {exc}"[:2000])
        return "unreadable"
    try:
        lines: dict[int, Line] = {}
        stored = 0
        for inbound in parsed.messages:
            if inbox.receive_inbound(_routed(line, inbound.line_id, lines), inbound) is not None:
                stored += 1
        for status in parsed.statuses:
            inbox.apply_status(_routed(line, status.line_id, lines), status)
        for template in parsed.templates:
            apply_template_status(line, template)
        errors = "; ".join(str(e) for e in parsed.errors)
    except Exception as exc:
        logger.exception("processing webhook event %s failed", event.pk)
        WebhookEvent.objects.filter(pk=event.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), error=errors[:2000])
    return f"{stored} message(s), {len(parsed.statuses)} status(es), {len(parsed.templates)} template update(s)"


def _routed(line: Line, line_id: int | None, cache: dict[int, Line]) -> Line:
    """The line an item of the payload belongs to: another line only of the same provider."""
    if not line_id or line_id == line.pk:
        return line
    if line_id not in cache:
        cache[line_id] = (Line.objects.select_related("provider", "campaign")
                          .filter(pk=line_id, provider_id=line.provider_id).first() or line)
    return cache[line_id]


def flag_line_problem(line: Line, problem: str) -> None:
    Line.objects.filter(pk=line.pk).update(health_error=problem[:2000], health_error_at=timezone.now())
    logger.error("line %s (%s) is unusable: %s", line.pk, line.number, problem)


def clear_line_problem(line: Line) -> None:
    if line.health_error:
        Line.objects.filter(pk=line.pk).update(health_error="", health_error_at=None)


def apply_template_status(line: Line, info: TemplateInfo) -> None:
    """A template-status webhook: update by provider id, or by name + language."""
    # Every line of the provider: several numbers can share one account's templates (one WABA).
    qs = MessageTemplate.objects.filter(line__provider=line.provider,
                                        provider_template_id=info.provider_template_id)
    if not qs.exists() and info.name:
        qs = MessageTemplate.objects.filter(line__provider=line.provider, name=info.name)
        if info.language:
            qs = qs.filter(language=info.language)
    qs.update(status=info.status, status_reason=info.reason or "")


def sync_templates(line: Line) -> int:
    """Fetch every template of the line's account from the provider and upsert them."""
    infos = get_adapter(line).fetch_templates()
    now = timezone.now()
    with transaction.atomic():
        for info in infos:
            MessageTemplate.objects.update_or_create(
                line=line, provider_template_id=info.provider_template_id,
                defaults={"name": info.name, "language": info.language, "status": info.status,
                          "category": info.category, "header": info.header, "body": info.body,
                          "footer": info.footer, "buttons": info.buttons, "status_reason": info.reason,
                          "synced_at": now},
            )
    return len(infos)


def overdue_webhook_events(older_than: datetime.timedelta, max_attempts: int = 10) -> list[int]:
    cutoff = timezone.now() - older_than
    return list(
        WebhookEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=max_attempts)
        .values_list("pk", flat=True)[:500]
    )
