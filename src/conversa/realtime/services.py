"""publish(): the only way an event reaches a browser.

The event is written to the log inside the caller's transaction and sent to the channel layer
only after commit, so nobody ever sees a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from conversa.realtime.models import Event, EventTarget

logger = logging.getLogger(__name__)


def publish(event_type: str, payload: dict[str, Any], groups: Iterable[str]) -> Event:
    audience = sorted(set(groups))
    event = Event.objects.create(type=event_type, payload=payload)
    EventTarget.objects.bulk_create([EventTarget(event=event, group=g) for g in audience])
    # "groups" lets a consumer tell through which of its groups an event reached it (a supervisor
    # receives the global "supervisors" group but may only see her own campaigns).
    message = {"type": "conversa.event", "id": event.pk, "event": event_type, "payload": payload,
               "groups": audience}
    transaction.on_commit(lambda: _send(audience, message))
    return event


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
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("pk")
                   .values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            EventTarget.objects.filter(event_id__in=ids).delete()
            Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI app on startup. The in-memory layer's queues belong to that loop, so
    sends from worker threads must run on it (asyncio queues are not thread-safe)."""
    global _server_loop
    _server_loop = loop


async def _group_send_all(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:  # the event log still has it; clients catch up on reconnect
            logger.exception("channel layer send to %s failed", group)


def _send(groups: list[str], message: dict[str, Any]) -> None:
    loop = _server_loop
    if loop is not None and loop.is_running():
        future = asyncio.run_coroutine_threadsafe(_group_send_all(groups, message), loop)
        try:
            future.result(timeout=5)
        except Exception:
            logger.exception("publishing event %s failed", message.get("id"))
        return
    async_to_sync(_group_send_all)(groups, message)
