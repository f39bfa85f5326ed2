"""Webhook ingestion (store first; workers claim the stored events in batches and apply them) and
template sync."""

from __future__ import annotations

import datetime
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from conversa.core.models import WorkerHeartbeat
from conversa.core.wake import WEBHOOKS, notify
from conversa.realtime.services import publishing_in_bulk
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import (
    CustomerEvent,
    IdAlias,
    InboundMessage,
    MalformedPayload,
    MessageChange,
    ParsedWebhook,
    StatusUpdate,
    TemplateInfo,
)
from conversa.whatsapp.models import Line, MessageTemplate, WebhookEvent, WebhookItemFailure

logger = logging.getLogger(__name__)
# Headers worth keeping with the raw event (never authorization material).
KEPT_HEADERS = ("content-type", "user-agent", "x-hub-signature-256", "x-conversa-signature")
# A webhook item that failed this many times waits for an admin (WebhookItemFailure).
WEBHOOK_ITEM_MAX_ATTEMPTS = 10
# An event whose processing failed (or killed its worker) this many times: left to the admins.
WEBHOOK_MAX_ATTEMPTS = 10
# The advisory-lock namespace of "a batch is applying this customer's messages" (an arbitrary int4).
CUSTOMER_LOCKS = 0x0C0A
# Seconds a worker waits when its whole batch was put back for customers another batch holds.
DEFER_PAUSE = 0.05


# Customers' messages of a batch, each customer's in order → which customers it applied (the
# others go to `inbound` one message at a time).
InboundInBulk = Callable[[Sequence[tuple[Line, Sequence[InboundMessage]]]], list[bool]]


@dataclass(frozen=True)
class WebhookHandlers:
    # A customer message for a line: the stored message, or None when it was already stored.
    inbound: Callable[[Line, InboundMessage], object | None]
    status: Callable[[Line, StatusUpdate], object | None]
    inbound_in_bulk: InboundInBulk | None = None


_handlers: list[WebhookHandlers] = []


def register_webhook_handlers(*, inbound: Callable[[Line, InboundMessage], object | None],
                              status: Callable[[Line, StatusUpdate], object | None],
                              inbound_in_bulk: InboundInBulk | None = None) -> None:
    """Who applies customer messages and delivery statuses: the conversation domain (inbox), which
    sits above this layer and registers itself in AppConfig.ready()."""
    _handlers[:] = [WebhookHandlers(inbound=inbound, status=status, inbound_in_bulk=inbound_in_bulk)]


# Who applies the other items adapters report (edits, customer events, echoes, id aliases): the
# conversation domain registers them in AppConfig.ready(); whatsapp.provider_events has the rest.
_item_handlers: dict[type, Callable[[Line, Any], object]] = {}


def register_item_handler(*, item_type: type, handler: Callable[[Line, Any], object]) -> None:
    _item_handlers[item_type] = handler


def _item_handler(item_type: type) -> Callable[[Line, Any], object]:
    from conversa.whatsapp import provider_events  # template categories and line notices are ours

    handler = _item_handlers.get(item_type) or provider_events.HANDLERS.get(item_type)
    if handler is None:
        raise RuntimeError(f"No handler registered for {item_type.__name__} webhook items.")
    return handler


def _webhook_handlers() -> WebhookHandlers:
    if not _handlers:
        raise RuntimeError("No webhook handlers registered (is conversa.inbox installed?).")
    return _handlers[0]


def announce_stored_events(*, event_ids: list[int]) -> None:
    """Called after the commit that stored these webhook events: wake a worker to claim them
    (PostgreSQL NOTIFY, or an in-process wake-up). Losing this is harmless: workers also poll."""
    if event_ids:
        notify(channel=WEBHOOKS)


def claim_webhook_events(*, worker_id: str, limit: int) -> list[int]:
    """Claim up to `limit` unprocessed events, oldest first, for `worker_id`; their ids.

    One short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers never
    take the same row nor wait for each other; SQLite serialises writers anyway) records the claim
    and counts the attempt. Claimable: never claimed; released after a failed run and left
    CONVERSA_WEBHOOK_SWEEP_AFTER s; or claimed by a worker whose heartbeat is stale (killed: its
    batch transaction died with it, so none of it was applied) for CONVERSA_WORKER_STALE_AFTER s.
    """
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=settings.CONVERSA_WORKER_STALE_AFTER)
    failed_retry = now - datetime.timedelta(seconds=settings.CONVERSA_WEBHOOK_SWEEP_AFTER)
    alive = WorkerHeartbeat.objects.filter(beat_at__gte=stale).values("worker_id")
    claimable = WebhookEvent.objects.filter(processed_at__isnull=True, attempts__lt=WEBHOOK_MAX_ATTEMPTS).filter(
        Q(claimed_at__isnull=True)
        | Q(claimed_by__isnull=True, claimed_at__lt=failed_retry)
        | (Q(claimed_by__isnull=False, claimed_at__lt=stale) & ~Q(claimed_by__in=alive)))
    with transaction.atomic():
        ids = list(claimable.select_for_update(skip_locked=True).order_by("pk").values_list("pk", flat=True)[:limit])
        if ids:
            WebhookEvent.objects.filter(pk__in=ids).update(claimed_by=worker_id, claimed_at=now,
                                                           attempts=F("attempts") + 1)
    return ids


def release_webhook_claims(*, worker_id: str) -> int:
    """The claims a database error left behind (nothing of their batch was applied): claimable
    again at once. Called by the worker itself once the database answers again."""
    return WebhookEvent.objects.filter(claimed_by=worker_id, processed_at__isnull=True).update(
        claimed_by=None, claimed_at=None)


def process_webhook_batch(*, worker_id: str, limit: int | None = None) -> int:
    """The worker's webhook job: claim a batch and apply it in one transaction; how many events."""
    ids = claim_webhook_events(worker_id=worker_id, limit=limit or settings.CONVERSA_WEBHOOK_BATCH)
    if not ids:
        return 0
    try:
        done = process_webhook_events(event_ids=ids, defer_busy=True)
    except (OperationalError, InterfaceError):
        raise  # the worker backs off and releases the claims once the database answers
    except Exception as exc:  # a bug outside any item: kept with its error, claimed again later
        logger.exception("processing webhook events %s failed", ids)
        WebhookEvent.objects.filter(pk__in=ids, processed_at__isnull=True).update(
            claimed_by=None, error=f"{type(exc).__name__}: {exc}"[:2000])
        return len(ids)
    if not done:
        # All put back for customers another batch holds: give it a moment to commit rather than
        # claiming them again at once (they are the oldest).
        time.sleep(DEFER_PAUSE)
    return len(ids)


def process_webhook_event(event_id: int) -> str:
    """Process one stored event now, claimed or not (tests, the admin, task rows of older
    versions); the attempt is counted as a claim would."""
    if not WebhookEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(attempts=F("attempts") + 1):
        WebhookEvent.objects.only("pk").get(pk=event_id)  # DoesNotExist for an event that is gone
        return "already processed"
    return process_webhook_events(event_ids=[event_id]).get(event_id, "already processed")


def process_webhook_events(*, event_ids: list[int], defer_busy: bool = False) -> dict[int, str]:
    """Parse stored callbacks and apply every message, status and template update they carry, all
    in one transaction; {event id: outcome}.

    Each item is applied in its own savepoint: one that fails is recorded (`WebhookItemFailure`,
    retried with back-off by the sweep) and the others still go through, so one odd item never
    costs the rest of its batch. Each step is idempotent (messages are unique per provider id,
    statuses only move forward), so processing an event twice changes nothing more. A database
    outage is no item's fault: it fails the whole batch (nothing applied), claimed again as a whole.
    Items are applied grouped by customer (the event order kept within each customer), so two
    workers lock conversations in the same order and never deadlock on them. With `defer_busy`
    (the workers' batches, on PostgreSQL) events of customers another open batch holds are put
    back unapplied (left out of the outcomes), so concurrent batches never queue on each other.
    """
    events = list(WebhookEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True).order_by("pk"))
    if not events:
        return {}
    lines = {line.pk: line for line in Line.objects.select_related("provider", "campaign", "time_group", "menu")
             .prefetch_related("time_group__ranges").filter(pk__in={e.line_id for e in events})}
    outcomes: dict[int, str] = {}
    errors: dict[int, list[Any]] = {}  # the parse notes; routing adds to the same lists
    batch: list[_Item] = []
    for event in events:
        event.line = lines[event.line_id]
        try:
            parsed = get_adapter(event.line).read(bytes(event.body))
        except MalformedPayload as exc:
            # Unreadable for good (the endpoint refuses these now; older rows may hold some): retrying
            # cannot help, so the event is closed with the reason.
            outcomes[event.pk], errors[event.pk] = "unreadable", [f"unreadable: {exc}"]
            continue
        errors[event.pk] = parsed.errors
        batch.extend(_items(event, parsed))
        outcomes[event.pk] = (f"{len(parsed.messages)} message(s), {len(parsed.statuses)} status(es), "
                              f"{len(parsed.templates)} template update(s)")
    now = timezone.now()
    with transaction.atomic():
        deferred = _customers_busy_elsewhere(batch) if defer_busy else set()
        if deferred:
            # Another worker's open batch holds one of their customers: ours would wait on its
            # conversation locks until it commits. Put them back (the claim not counted), to be
            # applied after it, in order.
            WebhookEvent.objects.filter(pk__in=deferred).update(claimed_by=None, claimed_at=None,
                                                                attempts=F("attempts") - 1)
            batch = [entry for entry in batch if entry.event.pk not in deferred]
            events = [event for event in events if event.pk not in deferred]
            for event_id in deferred:
                outcomes.pop(event_id, None)
        failed = _apply_items(batch, only=None)
        by_error: dict[str, list[int]] = {}
        for event in events:
            notes = [str(e) for e in errors[event.pk]]
            if failed.get(event.pk):
                notes.append(f"{failed[event.pk]} item(s) failed, kept for retry (webhook item failures)")
                outcomes[event.pk] += f", {failed[event.pk]} failed"
            by_error.setdefault("; ".join(notes)[:2000], []).append(event.pk)
        for error, ids in by_error.items():  # one statement for the whole batch when nothing went wrong
            WebhookEvent.objects.filter(pk__in=ids).update(processed_at=now, error=error, claimed_by=None)
    return outcomes


def retry_webhook_item_failures(event_id: int) -> str:
    """Apply again the items of an event whose failure is due (the sweep enqueues this)."""
    now = timezone.now()
    due = {(f.kind, f.position) for f in WebhookItemFailure.objects.filter(
        event_id=event_id, resolved_at__isnull=True, next_attempt_at__lte=now)}
    if not due:
        return "nothing due"
    event = WebhookEvent.objects.select_related("line__provider", "line__campaign").get(pk=event_id)
    parsed = get_adapter(event.line).read(bytes(event.body))
    failed = _apply_items(_items(event, parsed), only=due)
    return f"{len(due) - failed.get(event.pk, 0)} of {len(due)} item(s) applied"


@dataclass
class _Item:
    event: WebhookEvent
    errors: list[dict[str, Any]]  # the event's parse notes: routing adds to them
    kind: str
    position: int
    item: Any  # InboundMessage, StatusUpdate, TemplateInfo or another ParsedWebhook item

    @property
    def lock_order(self) -> tuple[int, int, str, str]:
        """Messages by line and customer (their conversation's lock), then statuses by message."""
        if isinstance(self.item, InboundMessage | MessageChange | CustomerEvent):
            # Echoes, edits and account events with the customer's messages, in payload order.
            return 0, self.event.line_id, self.item.line_ref, self.item.from_phone or self.item.from_user_id
        if isinstance(self.item, IdAlias):
            return 1, self.event.line_id, self.item.line_ref, self.item.provider_message_id
        if isinstance(self.item, StatusUpdate):
            return 1, self.event.line_id, self.item.line_ref, self.item.provider_message_id
        return 2, self.event.line_id, "", ""


def customer_lock_key(*, line_id: int, line_ref: str, sender: str) -> int:
    """The advisory lock (in CUSTOMER_LOCKS) of one customer of a webhook line."""
    name = f"{line_id}|{line_ref}|{sender}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=4).digest(), "big", signed=True)


def _customers_busy_elsewhere(batch: list[_Item]) -> set[int]:
    """Events with a customer (line, number, sender) whose transaction-scoped advisory lock another
    open batch holds; takes the others' locks for this transaction. PostgreSQL only (SQLite runs
    one writer at a time anyway). One statement; a hash collision only defers an event."""
    if connection.vendor != "postgresql":
        return set()
    keys: dict[int, set[int]] = {}
    for entry in batch:
        if isinstance(entry.item, InboundMessage | MessageChange | CustomerEvent):
            key = customer_lock_key(line_id=entry.event.line_id, line_ref=entry.item.line_ref,
                                    sender=entry.item.from_phone or entry.item.from_user_id)
            keys.setdefault(key, set()).add(entry.event.pk)
    if not keys:
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT k FROM unnest(%s::int[]) AS k WHERE NOT pg_try_advisory_xact_lock(%s, k)",
                       [sorted(keys), CUSTOMER_LOCKS])
        return {event_id for (key,) in cursor.fetchall() for event_id in keys[key]}


def _items(event: WebhookEvent, parsed: ParsedWebhook) -> list[_Item]:
    kinds = WebhookItemFailure.Kind
    return [*(_Item(event, parsed.errors, kinds.MESSAGE, n, m) for n, m in enumerate(parsed.messages)),
            *(_Item(event, parsed.errors, kinds.STATUS, n, s) for n, s in enumerate(parsed.statuses)),
            *(_Item(event, parsed.errors, kinds.TEMPLATE, n, t) for n, t in enumerate(parsed.templates)),
            *(_Item(event, parsed.errors, kind, n, item) for kind, items in (
                ("echo", parsed.echoes), ("change", parsed.changes), ("customer_event", parsed.customer_events),
                ("id_alias", parsed.id_aliases), ("template_category", parsed.template_categories),
                ("line_notice", parsed.line_notices)) for n, item in enumerate(items))]


def _apply_items(items: list[_Item], *, only: set[tuple[str, int]] | None) -> dict[int, int]:
    """Apply the items (or `only` those, of one event), each in its own savepoint; failed items
    per event. An IntegrityError is tried once more: it may be another worker that stored the same
    item concurrently, which the idempotent handlers then see and skip.

    Optimistically, a batch is first applied in one savepoint (two round trips per item fewer);
    if any item fails, that savepoint is rolled back (its events and on-commit work with it) and
    the batch applied item by item."""
    # Inside the batch's transaction, the events of all its items are written in two statements at
    # the end (realtime.services); outside one (`only`: each item commits on its own) as they come.
    with publishing_in_bulk():
        return _apply_each(items, only=only)


def _apply_each(items: list[_Item], *, only: set[tuple[str, int]] | None) -> dict[int, int]:
    handlers = _webhook_handlers()
    routes: dict[tuple[int, str], Line] = {}
    failed: dict[int, int] = {}
    # Python's sort is stable: within one customer, the events' order (and the items' within one).
    ordered = [entry for entry in sorted(items, key=lambda entry: entry.lock_order)
               if only is None or (entry.kind, entry.position) in only]
    if only is None and len(ordered) > 1:
        try:
            with transaction.atomic():
                applied = _apply_in_bulk(ordered, handlers=handlers, routes=routes)
                for entry in ordered:
                    if id(entry) not in applied:
                        _apply_item(entry, handlers=handlers, routes=routes)
            return failed
        except (OperationalError, InterfaceError):
            raise  # the database, not an item: the whole batch is retried
        except Exception:
            logger.info("an item of the batch failed; applying its items one by one", exc_info=True)
    for entry in ordered:
        for last_try in (False, True):
            try:
                with transaction.atomic():
                    _apply_item(entry, handlers=handlers, routes=routes)
            except (OperationalError, InterfaceError):
                raise  # the database, not the item: the whole batch is retried
            except IntegrityError as exc:
                if not last_try:
                    continue
                _item_failed(entry, exc=exc, failed=failed)
            except Exception as exc:
                _item_failed(entry, exc=exc, failed=failed)
            else:
                if only is not None:
                    WebhookItemFailure.objects.filter(
                        event=entry.event, kind=entry.kind, position=entry.position, resolved_at__isnull=True,
                    ).update(resolved_at=timezone.now(), next_attempt_at=None)
            break
    return failed


def _apply_in_bulk(ordered: list[_Item], *, handlers: WebhookHandlers,
                   routes: dict[tuple[int, str], Line]) -> set[int]:
    """Customers with nothing but messages in the batch go to the bulk handler together; the
    `id()`s of the items it applied. A customer with an edit, an echo or an account event in the
    batch keeps the one-by-one path, where their order is kept."""
    if handlers.inbound_in_bulk is None:
        return set()
    customers: dict[tuple[int, int, str, str], list[_Item]] = {}
    for entry in ordered:
        if isinstance(entry.item, InboundMessage | MessageChange | CustomerEvent):
            customers.setdefault(entry.lock_order, []).append(entry)
    groups = [entries for entries in customers.values() if all(type(e.item) is InboundMessage for e in entries)]
    if not groups:
        return set()
    taken = handlers.inbound_in_bulk([
        (_routed(entries[0].event.line, ref=entries[0].item.line_ref, cache=routes, errors=entries[0].errors),
         [e.item for e in entries]) for entries in groups])
    return {id(entry) for entries, took in zip(groups, taken, strict=True) if took for entry in entries}


def _apply_item(entry: _Item, *, handlers: WebhookHandlers, routes: dict[tuple[int, str], Line]) -> None:
    item, line = entry.item, entry.event.line
    if type(item) is InboundMessage:  # a customer's message (an echo is a subclass: below)
        handlers.inbound(_routed(line, ref=item.line_ref, cache=routes, errors=entry.errors), item)
    elif isinstance(item, StatusUpdate):
        handlers.status(_routed(line, ref=item.line_ref, cache=routes, errors=entry.errors), item)
    elif isinstance(item, TemplateInfo):
        apply_template_status(line, item)
    else:
        ref = getattr(item, "line_ref", "")
        _item_handler(type(item))(_routed(line, ref=ref, cache=routes, errors=entry.errors) if ref else line, item)


def _item_failed(entry: _Item, *, exc: Exception, failed: dict[int, int]) -> None:
    failed[entry.event.pk] = failed.get(entry.event.pk, 0) + 1
    logger.exception("webhook event %s: %s %s failed; kept for retry", entry.event.pk, entry.kind, entry.position)
    _record_item_failure(event=entry.event, kind=entry.kind, position=entry.position, item=entry.item, exc=exc)


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


def _routed(line: Line, *, ref: str, cache: dict[tuple[int, str], Line], errors: list[dict[str, Any]]) -> Line:
    """The line an item of the payload belongs to: the line of the same provider whose config
    value under the adapter's `line_ref_field` is `ref`; the webhook's own line when the item names
    none, names it, or names a number no line has (kept here rather than lost, and noted)."""
    adapter = get_adapter(line)
    key = adapter.line_ref_field
    if not key or not ref or str(adapter.config.get(key) or "") == ref:
        return line
    if (line.pk, ref) not in cache:
        found = (Line.objects.select_related("provider", "campaign", "time_group", "menu")
                 .filter(provider_id=line.provider_id, **{f"config__{key}": ref}).first())
        if found is None:
            errors.append({"error": f"no line has {key} {ref}; kept here"})
        cache[(line.pk, ref)] = found or line
    return cache[(line.pk, ref)]


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
