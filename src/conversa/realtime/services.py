"""publish(): the only way an event reaches a browser.

The event is written to the log inside the caller's transaction and sent to the channel layer
only after commit, so nobody ever sees a change that was rolled back. The layer carries it to
each web process once per group (one PUBLISH); the process's hub (realtime.fanout) hands it to
its sockets.

Inside `publishing_in_bulk()` (the webhook workers' batches) publish() only notes its events; they
are written with one insert of events and one of targets when the block ends, still inside the
caller's transaction (two statements per batch instead of two per event).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conversa.realtime.fanout import EVENT_MESSAGE
from conversa.realtime.models import EventTarget, StreamEvent

logger = logging.getLogger(__name__)


def publish(event_type: str, payload: dict[str, Any], groups: Iterable[str]) -> StreamEvent:
    audience = sorted(set(groups))
    event = StreamEvent(type=event_type, payload=payload)
    noted: list[_Noted] | None = getattr(_local, "noted", None)
    if noted is not None:
        # Written when publishing_in_bulk() ends; the marker tells whether its savepoint survived.
        marker = _Noted(event, audience)
        noted.append(marker)
        transaction.on_commit(marker)
        return event
    event.save()
    EventTarget.objects.bulk_create([EventTarget(event=event, group=g) for g in audience])
    _queue(event, audience)
    return event


def _queue(event: StreamEvent, audience: list[str]) -> None:
    # "groups" lets a consumer tell through which of its groups an event reached it (a supervisor
    # receives the global "supervisors" group but may only see her own campaigns).
    message = {"type": EVENT_MESSAGE, "id": event.pk, "event": event.type, "payload": event.payload,
               "groups": audience}
    _pending().append((audience, message))
    # Each event registers the flush, so whatever savepoint survives still flushes its events; the
    # first flush of a commit sends the whole batch in one hop to the event loop.
    transaction.on_commit(_flush)


class _Noted:
    """An event publish() noted inside publishing_in_bulk(), registered with on_commit: Django drops
    the on-commit work of a savepoint that rolls back, so a marker still registered at the end of
    the block is an event whose change is still there. Running it after commit does nothing (the
    event goes out with the flush)."""

    __slots__ = ("audience", "event")

    def __init__(self, event: StreamEvent, audience: list[str]) -> None:
        self.event, self.audience = event, audience

    def __call__(self) -> None:
        return None


@contextmanager
def publishing_in_bulk() -> Iterator[None]:
    """Within the caller's transaction: the events published inside are written at the end of the
    block with one bulk insert of events and one of their targets, in publish order, and sent after
    commit like any other. Events of savepoints rolled back inside the block are left out; if the
    block fails, none is written. Outside a transaction (or nested) it changes nothing."""
    if getattr(_local, "noted", None) is not None or not transaction.get_connection().in_atomic_block:
        yield
        return
    _local.noted = []
    try:
        yield
        noted: list[_Noted] = _local.noted
    finally:
        _local.noted = None
    _write_noted(noted)


def _write_noted(noted: list[_Noted]) -> None:
    registered = {id(entry[1]) for entry in connection.run_on_commit}  # (savepoints, func, robust)
    kept = [marker for marker in noted if id(marker) in registered]
    if not kept:
        return
    if connection.vendor == "postgresql":
        _insert_logged(kept)
    else:
        if connection.features.can_return_rows_from_bulk_insert:
            StreamEvent.objects.bulk_create([marker.event for marker in kept])  # ids set, in this order
        else:
            for marker in kept:
                marker.event.save()
        EventTarget.objects.bulk_create([EventTarget(event=marker.event, group=g) for marker in kept
                                         for g in marker.audience])
    for marker in kept:
        _queue(marker.event, marker.audience)


# The events and their targets in one statement; each side is one JSON document (one parameter
# for the driver to quote instead of one per value: Django's bulk_create quoted every array item in
# Python). Events are numbered in publish order: ids come from the sequence in that order.
INSERT_LOGGED = """
WITH event AS (
    INSERT INTO {events} (type, payload, created_at)
    SELECT e.value ->> 0, e.value -> 1, %s FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(value, n)
    ORDER BY e.n
    RETURNING id
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM event
), target AS (
    INSERT INTO {targets} (event_id, "group")
    SELECT numbered.id, t.value ->> 1 FROM jsonb_array_elements(%s::jsonb) AS t(value)
    JOIN numbered ON numbered.n = (t.value ->> 0)::bigint
)
SELECT id FROM numbered ORDER BY n
"""


def _insert_logged(kept: list[_Noted]) -> None:
    """PostgreSQL: the noted events and their targets written with one statement, ids set."""
    now = timezone.now()
    events = json.dumps([[marker.event.type, marker.event.payload] for marker in kept])
    targets = json.dumps([[n, group] for n, marker in enumerate(kept, start=1) for group in marker.audience])
    quote = connection.ops.quote_name
    sql = INSERT_LOGGED.format(events=quote(StreamEvent._meta.db_table), targets=quote(EventTarget._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, events, targets])
        ids = [row[0] for row in cursor.fetchall()]
    for marker, event_id in zip(kept, ids, strict=True):
        marker.event.pk, marker.event.created_at = event_id, now


_local = threading.local()


def _pending() -> list[tuple[list[str], dict[str, Any]]]:
    if not hasattr(_local, "pending"):
        _local.pending = []
    return _local.pending  # type: ignore[no-any-return]


def _flush() -> None:
    batch = _pending()
    if not batch:
        return
    _local.pending = []
    # A rolled-back transaction or savepoint leaves its events in the batch but not in the log:
    # only what committed goes out.
    committed = set(StreamEvent.objects.filter(pk__in=[m["id"] for _, m in batch]).values_list("pk", flat=True))
    _send([(groups, message) for groups, message in batch if message["id"] in committed])


PRUNE_BATCH = 5000


def prune_events(older_than: datetime.timedelta) -> int:
    """Delete log entries older than `older_than`; returns how many events went.

    In batches of short transactions, so pruning a big backlog never holds long locks against
    publish(). Sockets further behind than the replay limits are told to refetch anyway, so
    nothing needs a row older than the retention.
    """
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(StreamEvent.objects.filter(created_at__lt=cutoff).order_by("pk")
                   .values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            EventTarget.objects.filter(event_id__in=ids).delete()
            StreamEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def prune_expired_events() -> int:
    """The worker's sweep job: the log only serves catch-up after short disconnects, keep it bounded."""
    return prune_events(datetime.timedelta(seconds=settings.CONVERSA_EVENT_RETENTION))


_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI app on startup. The in-memory layer's queues belong to that loop, so
    sends from worker threads must run on it (asyncio queues are not thread-safe)."""
    global _server_loop
    _server_loop = loop


async def _group_send_all(batch: list[tuple[list[str], dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if await _publish_pipelined(layer, batch):
        return
    for groups, message in batch:
        for group in groups:
            await _group_send(layer, group, message)


async def _publish_pipelined(layer: Any, batch: list[tuple[list[str], dict[str, Any]]]) -> bool:
    """channels_redis' pub/sub layer (production): every PUBLISH of the batch in one pipeline per
    Redis shard, each message serialized once, instead of one awaited round trip per event and
    group (a webhook batch's ~3 per message were a fifth of a worker's time). It publishes what
    `group_send` publishes, on the layer's own connection. False for other layers, or when the
    pipeline failed: the caller then sends one by one with its retry (an event published twice is
    handed out once, by id: realtime.fanout)."""
    loop_layer = _pubsub_loop_layer(layer)
    if loop_layer is None:
        return False
    plan: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}  # id(shard) → (shard, [(channel, data)])
    for groups, message in batch:
        data = layer.serialize(message)
        for group in groups:
            channel = loop_layer._get_group_channel_name(group)
            shard = loop_layer._get_shard(channel)
            plan.setdefault(id(shard), (shard, []))[1].append((channel, data))
    try:
        for shard, publishes in plan.values():
            async with shard._lock:
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel, data in publishes:
                        pipe.publish(channel, data)
                    await pipe.execute()
    except Exception:
        logger.warning("pipelined publish of %d events failed; sending them one by one", len(batch), exc_info=True)
        return False
    return True


def _pubsub_loop_layer(layer: Any) -> Any:
    """The running loop's RedisPubSubLoopLayer of `layer` when it is channels_redis' pub/sub layer
    with the internals `_publish_pipelined` relies on (checked, so another version falls back to
    `group_send`); None otherwise."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    loop_layer = layer._get_layer()
    shards = getattr(loop_layer, "_shards", None)
    if not (hasattr(loop_layer, "_get_group_channel_name") and hasattr(loop_layer, "_get_shard") and shards
            and all(hasattr(s, "_lock") and hasattr(s, "_ensure_redis") and hasattr(s, "_redis") for s in shards)):
        return None
    return loop_layer


async def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """One group send, retried once on a fresh connection.

    After a Redis restart the pool can hold connections that look idle and fine but fail on first
    use (a proxy, NAT or container restart leaves them half-open); redis-py, as channels_redis
    configures it, does not retry. A send that fails twice is logged and left to the sockets'
    periodic re-read of the event log (fanout.Hub.repair), which delivers it within
    CONVERSA_EVENT_RECHECK_EVERY seconds.
    """
    try:
        await layer.group_send(group, message)
        return
    except Exception:
        logger.warning("channel layer send of event %s to %s failed; retrying on a fresh connection",
                       message["id"], group, exc_info=True)
    await _drop_idle_connections(layer, group)
    try:
        await layer.group_send(group, message)
    except Exception:
        logger.exception("channel layer send of event %s to %s failed twice; sockets will catch up "
                         "from the event log", message["id"], group)


async def _drop_idle_connections(layer: Any, group: str) -> None:
    """Close the idle pooled connections serving `group` (channels_redis' RedisChannelLayer), so the
    retry opens a new one instead of taking the next stale connection. Connections in use are left
    alone. The pub/sub layer's publishing connection is dropped by redis-py itself on an error,
    and other layers have no pool: nothing to do."""
    connection = getattr(layer, "connection", None)
    consistent_hash = getattr(layer, "consistent_hash", None)
    if connection is None or consistent_hash is None:
        return
    try:
        await connection(consistent_hash(group)).connection_pool.disconnect(inuse_connections=False)
    except Exception:
        logger.warning("dropping idle channel-layer connections failed", exc_info=True)


_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _own_loop() -> asyncio.AbstractEventLoop:
    """A long-lived loop for processes without an ASGI server (the task worker, scripts): one
    thread and one Redis connection pool for all sends, instead of a new loop per event."""
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None or not _publisher_loop.is_running():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="conversa-publisher", daemon=True).start()
            _publisher_loop = loop
        return _publisher_loop


def _send(batch: list[tuple[list[str], dict[str, Any]]]) -> None:
    if not batch:
        return
    loop = _server_loop if _server_loop is not None and _server_loop.is_running() else _own_loop()
    future = asyncio.run_coroutine_threadsafe(_group_send_all(batch), loop)
    try:
        future.result(timeout=10)
    except Exception:
        logger.exception("publishing events %s failed", [m["id"] for _, m in batch])
