"""publish(): the only way an event reaches a browser.

The event is written to the log inside the caller's transaction and sent to the channel layer
only after commit, so nobody ever sees a change that was rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversa.realtime.models import Event, EventTarget

logger = logging.getLogger(__name__)


def publish(event_type: str, payload: dict[str, Any], groups: Iterable[str]) -> Event:
    audience = sorted(set(groups))
    event = Event.objects.create(type=event_type, payload=payload)
    EventTarget.objects.bulk_create([EventTarget(event=event, group=g) for g in audience])
    message = {"type": "conversa.event", "id": event.pk, "event": event_type, "payload": payload}
    transaction.on_commit(lambda: _send(audience, message))
    return event


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
