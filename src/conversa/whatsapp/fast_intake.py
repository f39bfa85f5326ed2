"""The webhook fast path: POST /webhooks/<kind>/<id>/ answered by a small ASGI app ahead of Django.

A burst of callbacks is the busiest thing this server does, and through Django each one paid for
thread hops and the whole synchronous middleware stack (issue 10: 42 % of web CPU). Here the
event loop reads the body (same size limit, 413) and queues the request for the process's
group-commit writers: CONVERSA_WEBHOOK_WRITERS threads, each with its own pooled Django
connection, each taking everything queued (up to MAX_BATCH; one writer at a time gathers, up to
CONVERSA_WEBHOOK_GATHER s after its first request or until GATHERED_ENOUGH are there, so a steady
few hundred webhooks/s commit in batches rather than one by one) and running
`intake.receive_webhooks` on it once (one INSERT that commits by itself) before resolving each
request's future. With one
writer a batch waited for the previous one's commit (its WAL flush); with two, one batch is
written while the next gathers, and PostgreSQL flushes concurrent commits together. Every answer
is sent after its batch committed; a database outage is 503 with Retry-After (`intake`), never
200, never a traceback. The GET handshake and anything else go to Django. Per batch the writers
no longer read the lines (kept LINE_FRESH_FOR s, `intake.KnownLines`) and wake the workers after
answering, one NOTIFY in flight per process (`_announce`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import connection

from conversa.whatsapp.intake import (
    IncomingWebhook,
    KnownLines,
    WebhookAnswer,
    receive_webhooks,
    unavailable_answer,
    webhook_body_limit,
)
from conversa.whatsapp.services import announce_stored_events

logger = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# The same URL as the Django route webhooks/<str:kind>/<int:line_id>/.
WEBHOOK_PATH = re.compile(r"/webhooks/(?P<kind>[^/]+)/(?P<line_id>[0-9]+)/")
# The most requests one INSERT stores: bounds a statement's parameters and a batch's latency.
MAX_BATCH = 500
# A gathering writer stops waiting for more once a batch has this many requests (decisions #80).
GATHERED_ENOUGH = 8
# Seconds a writer trusts a line it read (intake.KnownLines): a config change is seen within this.
LINE_FRESH_FOR = 1.0
# Headers every Django answer carries (SecurityMiddleware, XFrameOptionsMiddleware).
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin")]


def webhook_route(scope: Scope) -> tuple[str, int] | None:
    """(kind, line id) when this is a webhook POST for the fast path; None for everything else
    (and for plain HTTP where HTTPS is required: Django's SecurityMiddleware redirects those)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    match = WEBHOOK_PATH.fullmatch(scope["path"])
    if match is None or (settings.SECURE_SSL_REDIRECT and not _secure(scope)):
        return None
    return match["kind"], int(match["line_id"])


def _secure(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    if not settings.SECURE_PROXY_SSL_HEADER:
        return False
    meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
    wanted = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
    return any(name.lower() == wanted and value.decode("latin-1").split(",")[0].strip() == expected
               for name, value in scope["headers"])


@dataclass
class _Pending:
    request: IncomingWebhook
    future: asyncio.Future[WebhookAnswer]
    loop: asyncio.AbstractEventLoop
    queued_at: float  # time.monotonic()


class GroupCommitWriter:
    """One per process: requests queue up while a batch is being written, and go together next."""

    def __init__(self, *, max_batch: int = MAX_BATCH, writers: int | None = None,
                 gather_for: float | None = None) -> None:
        self.max_batch = max_batch
        self._writers = writers
        self._gather_for = gather_for
        # One writer gathers the next batch at a time (the others write theirs meanwhile), so a
        # gathering pause fills one batch instead of splitting the arrivals between idle writers.
        self._gathering = threading.Lock()
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Database errors met by any writer: after an outage (a PostgreSQL restart) every writer's
        # kept connection is suspect, not only the one that found out.
        self._failures = 0
        self.known = KnownLines(fresh_for=LINE_FRESH_FOR)
        # Waking the workers (a NOTIFY, a round trip): one writer at a time sends it, once more
        # for whatever was committed while it was sending (see _announce).
        self._unannounced: list[int] = []
        self._announcing = False

    async def submit(self, request: IncomingWebhook) -> WebhookAnswer:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WebhookAnswer] = loop.create_future()
        self._start()
        self._queue.put(_Pending(request=request, future=future, loop=loop, queued_at=time.monotonic()))
        return await future

    @property
    def gather_for(self) -> float:
        return self._gather_for if self._gather_for is not None else settings.CONVERSA_WEBHOOK_GATHER

    @property
    def writers(self) -> int:
        return self._writers or settings.CONVERSA_WEBHOOK_WRITERS

    def _start(self) -> None:
        if len(self._threads) == self.writers and all(t.is_alive() for t in self._threads):
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.writers:
                thread = threading.Thread(target=self._run, name=f"webhook-group-commit-{len(self._threads)}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        seen = self._failures
        while True:
            with self._gathering:
                batch = self._gather()
            if seen != self._failures:
                # Another writer's connection broke: this one goes back to the pool, which checks
                # it before lending it again, rather than failing a batch of its own.
                connection.close()
            self.write(batch)
            seen = self._failures

    def _gather(self) -> list[_Pending]:
        """The next batch: what is queued, waiting until `gather_for` s after the first request
        arrived for more, or until GATHERED_ENOUGH are there. At a steady few hundred webhooks/s
        that turns a commit (a WAL flush), a NOTIFY and two thread switches per request into one
        per batch. Under a backlog the first request has waited longer than that already; with many
        senders each waiting for its answer (the provider's connections at full speed) a batch
        fills at once: then nothing more is waited for, as a pause would only idle those senders."""
        batch = [self._queue.get()]
        until = batch[0].queued_at + self.gather_for
        while len(batch) < self.max_batch:
            left = until - time.monotonic() if len(batch) < GATHERED_ENOUGH else 0
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def write(self, batch: list[_Pending]) -> None:
        try:
            answers = receive_webhooks(requests=[p.request for p in batch], known=self.known, announce=False)
        except Exception:
            logger.exception("webhook intake failed for a batch of %d", len(batch))
            answers = [unavailable_answer() for _ in batch]
            self.known.forget()  # a line deleted meanwhile fails the INSERT: read them again
        finally:
            # The writer keeps its pooled connection between batches; a broken one goes back now.
            if connection.errors_occurred or connection.needs_rollback:
                connection.close()
                with self._lock:
                    self._failures += 1
        # One wake-up of each event loop per batch, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[WebhookAnswer], WebhookAnswer]]] = {}
        for pending, answer in zip(batch, answers, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, answer))
        for loop, resolved in by_loop.items():
            loop.call_soon_threadsafe(_resolve, resolved)
        stored = [answer.body["event"] for answer in answers
                  if answer.status == 200 and answer.body.get("status") == "stored"]
        if stored:
            self._announce(stored)

    def _announce(self, event_ids: list[int]) -> None:
        """Wake the workers for events committed before this call. When another writer is sending a
        notification right now, it may have sent it before our commit: it sends one more after
        for what it finds waiting, so there is at most one NOTIFY in flight per process, and never
        a committed event without one sent after its commit."""
        with self._lock:
            self._unannounced.extend(event_ids)
            if self._announcing:
                return
            self._announcing = True
        try:
            while True:
                with self._lock:
                    waiting, self._unannounced = self._unannounced, []
                    if not waiting:
                        self._announcing = False
                        return
                announce_stored_events(event_ids=waiting)  # logs a database error, never raises one
                if connection.errors_occurred:
                    connection.close()  # broken: back to the pool now, not into the next batch
        except BaseException:
            with self._lock:
                self._announcing = False
            raise


def _resolve(resolved: list[tuple[asyncio.Future[WebhookAnswer], WebhookAnswer]]) -> None:
    for future, answer in resolved:
        if not future.done():  # the client may have gone
            future.set_result(answer)


writer = GroupCommitWriter()


async def webhook_app(scope: Scope, receive: Receive, send: Send, *, kind: str, line_id: int) -> None:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query_string = scope.get("query_string", b"")
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {}
    limit = webhook_body_limit()
    try:
        declared = int(headers.get("content-length") or 0)
    except ValueError:
        declared = 0
    too_large: int | None = declared if declared > limit else None
    chunks: list[bytes] = []
    size = 0
    more = too_large is None
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_large = max(declared, limit + 1)
            break
        chunks.append(chunk)
        more = message.get("more_body", False)
    request = IncomingWebhook(kind=kind, line_id=line_id, headers=headers, query=query,
                              body=b"".join(chunks) if too_large is None else b"", too_large=too_large)
    answer = await writer.submit(request)
    content = answer.content
    await send({"type": "http.response.start", "status": answer.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            *SECURITY_HEADERS,
                            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items())]})
    await send({"type": "http.response.body", "body": content})
