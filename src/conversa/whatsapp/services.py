"""Webhook ingestion (store first, process in a task) and template sync."""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import (
    InboundMessage,
    MalformedPayload,
    ParsedWebhook,
    ProviderAdapter,
    StatusUpdate,
    TemplateInfo,
)
from conversa.whatsapp.models import Line, MessageTemplate, WebhookEvent, WebhookItemFailure

logger = logging.getLogger(__name__)
# Headers worth keeping with the raw event (never authorization material).
KEPT_HEADERS = ("content-type", "user-agent", "x-hub-signature-256", "x-conversa-signature")
# A webhook item that failed this many times waits for an admin (WebhookItemFailure).
WEBHOOK_ITEM_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class WebhookHandlers:
    # A customer message for a line: the stored message, or None when it was already stored.
    inbound: Callable[[Line, InboundMessage], object | None]
    status: Callable[[Line, StatusUpdate], object | None]


_handlers: list[WebhookHandlers] = []


def register_webhook_handlers(*, inbound: Callable[[Line, InboundMessage], object | None],
                              status: Callable[[Line, StatusUpdate], object | None]) -> None:
    """Who applies customer messages and delivery statuses: the conversation domain (inbox), which
    sits above this layer and registers itself in AppConfig.ready()."""
    _handlers[:] = [WebhookHandlers(inbound=inbound, status=status)]


def _webhook_handlers() -> WebhookHandlers:
    if not _handlers:
        raise RuntimeError("No webhook handlers registered (is conversa.inbox installed?).")
    return _handlers[0]


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
    transaction.on_commit(lambda: announce_stored_events(event_ids=[event.pk]))
    return event, True


def announce_stored_events(*, event_ids: list[int]) -> None:
    """Called after the commit that stored these webhook events: get them processed."""
    from conversa.whatsapp import tasks

    for event_id in event_ids:
        tasks.process_webhook_event.enqueue(event_id)


def process_webhook_event(event_id: int) -> str:
    """Parse a stored callback and apply every message, status and template update it carries.

    Each item is applied in its own savepoint: one that fails is recorded (`WebhookItemFailure`,
    retried with back-off by the sweep) and the others still go through, so one odd item never
    costs the rest of its batch. Each step is idempotent (messages are unique per provider id,
    statuses only move forward), so processing an event twice, or after a crash half-way, changes
    nothing more. A database outage is no item's fault: it fails the whole run, retried as a whole.
    """
    event = WebhookEvent.objects.select_related("line__provider", "line__campaign").get(pk=event_id)
    if event.processed_at:
        return "already processed"
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
    try:
        parsed = get_adapter(event.line).read(bytes(event.body))
    except MalformedPayload as exc:
        # Unreadable for good (the endpoint refuses these now; older rows may hold some): retrying
        # cannot help, so the event is closed with the reason.
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(),
                                                        error=f"unreadable: {exc}"[:2000])
        return "unreadable"
    try:
        stored, failed = _apply_items(event, parsed, only=None)
    except Exception as exc:
        logger.exception("processing webhook event %s failed", event.pk)
        WebhookEvent.objects.filter(pk=event.pk).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    errors = "; ".join([*(str(e) for e in parsed.errors),
                        *([f"{failed} item(s) failed, kept for retry (webhook item failures)"] if failed else [])])
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), error=errors[:2000])
    return (f"{stored} message(s), {len(parsed.statuses)} status(es), {len(parsed.templates)} template update(s)"
            + (f", {failed} failed" if failed else ""))


def retry_webhook_item_failures(event_id: int) -> str:
    """Apply again the items of an event whose failure is due (the sweep enqueues this)."""
    now = timezone.now()
    due = {(f.kind, f.position) for f in WebhookItemFailure.objects.filter(
        event_id=event_id, resolved_at__isnull=True, next_attempt_at__lte=now)}
    if not due:
        return "nothing due"
    event = WebhookEvent.objects.select_related("line__provider", "line__campaign").get(pk=event_id)
    parsed = get_adapter(event.line).read(bytes(event.body))
    _, failed = _apply_items(event, parsed, only=due)
    return f"{len(due) - failed} of {len(due)} item(s) applied"


Item = tuple[str, int, InboundMessage | StatusUpdate | TemplateInfo]


def _apply_items(event: WebhookEvent, parsed: ParsedWebhook, *, only: set[tuple[str, int]] | None) -> tuple[int, int]:
    """Apply the event's items (or `only` those), each in its own savepoint; (stored messages, failed)."""
    handlers = _webhook_handlers()
    adapter = get_adapter(event.line)
    kinds = WebhookItemFailure.Kind
    items: list[Item] = [*((kinds.MESSAGE, n, m) for n, m in enumerate(parsed.messages)),
                         *((kinds.STATUS, n, s) for n, s in enumerate(parsed.statuses)),
                         *((kinds.TEMPLATE, n, t) for n, t in enumerate(parsed.templates))]
    lines: dict[str, Line] = {}
    stored = failed = 0
    for kind, position, item in items:
        if only is not None and (kind, position) not in only:
            continue
        try:
            with transaction.atomic():
                if isinstance(item, InboundMessage):
                    routed = _routed(adapter, ref=item.line_ref, cache=lines, errors=parsed.errors)
                    stored += handlers.inbound(routed, item) is not None
                elif isinstance(item, StatusUpdate):
                    routed = _routed(adapter, ref=item.line_ref, cache=lines, errors=parsed.errors)
                    handlers.status(routed, item)
                else:
                    apply_template_status(event.line, item)
        except (OperationalError, InterfaceError):
            raise  # the database, not the item: the whole event is retried
        except Exception as exc:
            failed += 1
            logger.exception("webhook event %s: %s %s failed; kept for retry", event.pk, kind, position)
            _record_item_failure(event=event, kind=kind, position=position, item=item, exc=exc)
        else:
            WebhookItemFailure.objects.filter(event=event, kind=kind, position=position,
                                              resolved_at__isnull=True).update(resolved_at=timezone.now(),
                                                                               next_attempt_at=None)
    return stored, failed


def _record_item_failure(*, event: WebhookEvent, kind: str, position: int,
                         item: InboundMessage | StatusUpdate | TemplateInfo, exc: Exception) -> None:
    """Kept with its error; the next try after CONVERSA_WEBHOOK_ITEM_RETRY_AFTER s doubling (capped
    at an hour), none after WEBHOOK_ITEM_MAX_ATTEMPTS (then it waits for an admin)."""
    ref = getattr(item, "provider_message_id", "") or getattr(item, "provider_template_id", "")
    failure, _ = WebhookItemFailure.objects.get_or_create(
        event=event, kind=kind, position=position,
        defaults={"item_ref": str(ref)[:200], "error": "", "attempts": 0})
    failure.attempts += 1
    failure.error = f"{type(exc).__name__}: {exc}"[:2000]
    failure.resolved_at = None
    delay = min(3600.0, settings.CONVERSA_WEBHOOK_ITEM_RETRY_AFTER * 2 ** (failure.attempts - 1))
    failure.next_attempt_at = (timezone.now() + datetime.timedelta(seconds=delay)
                               if failure.attempts < WEBHOOK_ITEM_MAX_ATTEMPTS else None)
    failure.save()


def _routed(adapter: ProviderAdapter, *, ref: str, cache: dict[str, Line], errors: list[dict[str, Any]]) -> Line:
    """The line an item of the payload belongs to: the line of the same provider whose config
    value under the adapter's `line_ref_field` is `ref`; the webhook's own line when the item names
    none, names it, or names a number no line has (kept here rather than lost, and noted)."""
    line, key = adapter.line, adapter.line_ref_field
    if not key or not ref or str(adapter.config.get(key) or "") == ref:
        return line
    if ref not in cache:
        found = (Line.objects.select_related("provider", "campaign")
                 .filter(provider_id=line.provider_id, **{f"config__{key}": ref}).first())
        if found is None:
            errors.append({"error": f"no line has {key} {ref}; kept here"})
        cache[ref] = found or line
    return cache[ref]


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
