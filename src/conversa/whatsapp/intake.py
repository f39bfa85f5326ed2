"""Webhook intake: a batch of provider callbacks verified, read and durably stored in one round trip.

Both doors use it: the Django view (a batch of one) and the ASGI fast path (`whatsapp.fast_intake`,
a batch of whatever arrived while the previous one was being committed). For each request: an
unknown line is 404, a bad signature 401, a body the adapter cannot read or use 400 (a sample kept
by `whatsapp.rejections`, as for an over-size body, 413). Every accepted body is then inserted with
one multi-row `INSERT … ON CONFLICT (line_id, body_sha256) DO NOTHING RETURNING`, duplicates found
by their hash, and the statement committed before any answer exists: an acknowledgement always
means the raw body is stored. A database failure answers every stored-to-be request 503 with
Retry-After (the provider retries; nothing was acknowledged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from conversa.core.api import error_body
from conversa.core.parsers import PayloadTooLarge
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import MalformedPayload, ProviderAdapter, WebhookRejected
from conversa.whatsapp.models import Line, WebhookEvent
from conversa.whatsapp.rejections import record_rejected_webhook
from conversa.whatsapp.services import KEPT_HEADERS, announce_stored_events

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
# Seconds a provider is asked to wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 5
MAX_ID = 2**63 - 1  # bigint
COLUMNS = ("line", "provider_kind", "body", "body_sha256", "headers", "received_at", "attempts", "error")
_ENCODER = DjangoJSONEncoder()
_ACKED = {"stored": b"stored", "duplicate": b"duplicate"}
_ACK_KEYS = ("status", "event")


def webhook_body_limit() -> int:
    configured = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return MAX_WEBHOOK_BYTES if configured is None else min(MAX_WEBHOOK_BYTES, configured)


@dataclass(frozen=True)
class IncomingWebhook:
    """One POST to /webhooks/<kind>/<line_id>/: header names lower-case. `too_large` is the size of
    a body over the limit, which was not read (body empty)."""

    kind: str
    line_id: int
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    too_large: int | None = None


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> bytes:
        # What Django's JsonResponse writes for the same dict, byte for byte (one encoder for all:
        # `json.dumps(cls=...)` built a new one per answer). An acknowledgement, the answer of a
        # burst, is formatted directly: its two values need no escaping.
        body = self.body
        if self.status == 200 and tuple(body) == _ACK_KEYS and type(body["event"]) is int and body["status"] in _ACKED:
            return b'{"status": "%s", "event": %d}' % (_ACKED[body["status"]], body["event"])
        return _ENCODER.encode(self.body).encode()


@dataclass
class _Accepted:
    index: int
    line: Line
    body: bytes
    digest: str
    headers: dict[str, str]


def _error(status: int, *, code: str, message: str, field: str | None = None,
           extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> WebhookAnswer:
    return WebhookAnswer(status=status, body=error_body(code=code, message=message, field=field, extra=extra),
                         headers=headers or {})


def unavailable_answer() -> WebhookAnswer:
    return _error(503, code="unavailable", message="Temporarily unable to store the webhook; retry later.",
                  headers={"retry-after": str(RETRY_AFTER_SECONDS)})


class KnownLines:
    """The lines (with their provider) one process's webhook writers have read, each trusted for
    `fresh_for` seconds. A burst is hundreds of small batches a second to the same few lines, and
    reading them for every batch was an eighth of the fast path's CPU. A change made elsewhere
    (a rotated app secret, a deleted line) is seen within `fresh_for`: meanwhile a callback may be
    refused (401) or its batch answered 503 (the line's row gone), both retried by the provider;
    never a 200 for something not stored. Unknown ids are not kept (a line created now is found at
    once)."""

    def __init__(self, *, fresh_for: float) -> None:
        self.fresh_for = fresh_for
        self._kept: dict[int, tuple[float, Line]] = {}

    def lines(self, ids: set[int]) -> dict[int, Line]:
        now = time.monotonic()
        found: dict[int, Line] = {}
        unread: set[int] = set()
        for line_id in ids:
            kept = self._kept.get(line_id)
            if kept is not None and now - kept[0] < self.fresh_for:
                found[line_id] = kept[1]
            else:
                unread.add(line_id)
        if unread:
            for line in _read_lines(unread).values():
                self._kept[line.pk] = (now, line)
                found[line.pk] = line
            for line_id in unread - found.keys():
                self._kept.pop(line_id, None)
        return found

    def forget(self) -> None:
        self._kept = {}


def _read_lines(ids: set[int]) -> dict[int, Line]:
    return {line.pk: line for line in Line.objects.select_related("provider").filter(pk__in=ids)} if ids else {}


def receive_webhooks(*, requests: Sequence[IncomingWebhook], known: KnownLines | None = None,
                     announce: bool = True) -> list[WebhookAnswer]:
    """One answer per request, in order; an answer 200 only once its body is committed. With
    `known`, lines are taken from it rather than read for this batch; without `announce`, the
    caller wakes the workers for the new events (answers "stored") itself."""
    try:
        return _receive(requests, known, announce)
    except (OperationalError, InterfaceError) as exc:  # the database, not the request: retried later
        logger.warning("webhook intake: database unavailable (%s: %s); answering 503", type(exc).__name__, exc)
        return [unavailable_answer() for _ in requests]


def _receive(requests: Sequence[IncomingWebhook], known: KnownLines | None, announce: bool) -> list[WebhookAnswer]:
    answers: list[WebhookAnswer | None] = [None] * len(requests)
    # An id no row can have (the URL takes any digits) is simply unknown, never a query error.
    wanted = {r.line_id for r in requests if 0 < r.line_id <= MAX_ID}
    lines = known.lines(wanted) if known is not None else _read_lines(wanted)
    accepted: list[_Accepted] = []
    adapters: dict[int, ProviderAdapter] = {}
    for index, request in enumerate(requests):
        line = lines.get(request.line_id)
        if line is None or line.provider.kind != request.kind:
            answers[index] = _error(404, code="not_found", message="Unknown line.")
            continue
        try:
            answer = _check(line, request, adapters)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            # A bug met by one callback costs that callback only, not the rest of its batch.
            logger.exception("webhook intake: checking a %s callback for line %s failed", request.kind, line.pk)
            answer = _error(500, code="server_error", message="Internal error.")
        if answer is not None:
            answers[index] = answer
            continue
        accepted.append(_Accepted(index=index, line=line, body=request.body,
                                  digest=hashlib.sha256(request.body).hexdigest(),
                                  headers={k: v for k, v in request.headers.items() if k in KEPT_HEADERS}))
    for item, (event_id, created) in zip(accepted, _store(accepted, announce=announce), strict=True):
        answers[item.index] = WebhookAnswer(status=200, body={"status": "stored" if created else "duplicate",
                                                              "event": event_id})
    return [a for a in answers if a is not None]


def _check(line: Line, request: IncomingWebhook, adapters: dict[int, ProviderAdapter]) -> WebhookAnswer | None:
    """The answer refusing this request, or None when its body is to be stored."""
    if request.too_large is not None:
        # Not read (reading megabytes to keep a few KB is the cost the limit avoids), so not verified
        # either: the sample is the headers, the size and the reason.
        record_rejected_webhook(line=line, status_code=413, reason=f"body over {webhook_body_limit()} bytes",
                                headers=request.headers, body_start=b"", size=request.too_large, verified=False)
        return _error(413, code="too_large", message=str(PayloadTooLarge.default_detail))
    adapter = adapters.get(line.pk) or adapters.setdefault(line.pk, get_adapter(line))
    body = request.body
    try:
        adapter.verify(headers=request.headers, body=body, query=request.query)
    except WebhookRejected as exc:
        return _error(401, code="not_authenticated", message=str(exc))
    try:
        parsed = adapter.read(body)
    except MalformedPayload as exc:
        record_rejected_webhook(line=line, status_code=400, reason=str(exc), headers=request.headers,
                                body_start=body, size=len(body), verified=True)
        return _error(400, code="invalid", message=str(exc), field=exc.field)
    if parsed.rejected and not parsed.usable:
        first = parsed.rejected[0]
        record_rejected_webhook(line=line, status_code=400, reason=f"{first['field']}: {first['error']}",
                                headers=request.headers, body_start=body, size=len(body), verified=True)
        return _error(400, code="invalid", message=first["error"], field=first["field"],
                      extra={"rejected": parsed.rejected})
    return None


def _store(accepted: list[_Accepted], *, announce: bool = True) -> list[tuple[int, bool]]:
    """(event id, newly stored) per accepted body, all in one transaction; the new ones announced
    once it committed. The first of two identical bodies in a batch is the stored one."""
    if not accepted:
        return []
    unique: dict[tuple[int, str], _Accepted] = {}
    for item in accepted:
        unique.setdefault((item.line.pk, item.digest), item)
    # One statement, so atomic on its own: outside a transaction it commits by itself (a BEGIN and
    # a COMMIT fewer per batch, each a round trip); inside a caller's, it is part of it.
    created = _insert(list(unique.values()))
    if created and announce:
        # robust: the bodies are stored whatever happens here; the sweep picks up what was not announced.
        # (With no transaction open, Django runs it at once: the insert has committed.)
        transaction.on_commit(partial(announce_stored_events, event_ids=sorted(created.values())), robust=True)
    missing = [key for key in unique if key not in created]
    existing: dict[tuple[int, str], int] = {}
    if missing:
        # A duplicate's row is committed by now: ON CONFLICT waited for any insert still in flight.
        for pk, line_id, digest in WebhookEvent.objects.filter(
                line_id__in={k[0] for k in missing}, body_sha256__in={k[1] for k in missing}
        ).values_list("pk", "line_id", "body_sha256"):
            existing[(line_id, digest)] = pk
    results: list[tuple[int, bool]] = []
    first_of: dict[tuple[int, str], int] = {}
    for item in accepted:
        key = (item.line.pk, item.digest)
        if key in created and first_of.setdefault(key, item.index) == item.index:
            results.append((created[key], True))
        else:
            results.append((created.get(key) or existing[key], False))
    return results


def store_webhook(line: Line, body: bytes, headers: dict[str, str]) -> tuple[WebhookEvent, bool]:
    """Store one already verified callback the way the intake does; (event, created). A
    byte-identical replay is stored once. For scripts and tests that skip the HTTP request."""
    kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS}
    [(event_id, created)] = _store([_Accepted(index=0, line=line, body=body, digest=hashlib.sha256(body).hexdigest(),
                                              headers=kept)])
    return WebhookEvent.objects.get(pk=event_id), created


def _field(name: str) -> Field[Any, Any]:
    found = WebhookEvent._meta.get_field(name)
    assert isinstance(found, Field)
    return found


def _insert(items: list[_Accepted]) -> dict[tuple[int, str], int]:
    """The multi-row insert; {(line id, sha256): id} of the rows it created (not the duplicates)."""
    quote = connection.ops.quote_name
    fields = [_field(name) for name in COLUMNS]
    line_col, digest_col = quote(_field("line").column), quote(_field("body_sha256").column)
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One array per column, unnested into rows: the statement's text (which psycopg parses and
        # caches) is the same for every batch size, and the values travel as five parameters.
        rows = ("SELECT line_id, kind, body, digest, headers::jsonb, %s, 0, '' "
                "FROM unnest(%b::bigint[], %b::text[], %b::bytea[], %b::text[], %b::text[]) "
                "AS batch(line_id, kind, body, digest, headers)")
        params: list[Any] = [now, [i.line.pk for i in items], [i.line.provider.kind for i in items],
                             [i.body for i in items], [i.digest for i in items],
                             [json.dumps(i.headers) for i in items]]
    else:
        rows = "VALUES " + ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(items))
        params = [f.get_db_prep_save(v, connection) for i in items
                  for f, v in zip(fields, (i.line.pk, i.line.provider.kind, i.body, i.digest, i.headers, now, 0, ""),
                                  strict=True)]
    # Identifiers come from the model's own metadata; every value is a parameter.
    sql = (f"INSERT INTO {quote(WebhookEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"{rows} ON CONFLICT ({line_col}, {digest_col}) DO NOTHING "
           f"RETURNING {quote(_field('id').column)}, {line_col}, {digest_col}")
    if connection.vendor == "postgresql":
        # Bound on the server, arrays in binary: merging 500 bodies into the query text (Django's
        # client-side binding) cost more than the insert itself.
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
            raw.execute(sql.encode(), params)
            found = raw.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
    return {(int(line_id), str(digest)): int(pk) for pk, line_id, digest in found}
