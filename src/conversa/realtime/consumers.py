"""Websocket consumers: the agent console's event stream and the sandbox customer simulator's.

Frames sent (JSON text):
  {"event": "hello", "payload": {"last_event_id": N}}      first, on every connect
  {"id": 42, "event": "message.created", "payload": {...}}  an event (live or replayed)
  {"event": "refetch", "payload": {"reason": ..., "last_event_id": N}}
                                                           the client is too far behind: reload lists
Frames accepted: {"type": "resume", "last_event_id": N} (same as ?last_event_id=N), {"type": "ping"}.
Close codes: 4401 not authenticated, 4403 no WhatsApp access, 4404 no such sandbox line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from conversa.realtime.auth import query_param
from conversa.realtime.stream import (
    Audience,
    StreamRefused,
    audience_for,
    catch_up,
    current_event_id,
    event_frame,
    missed,
)

logger = logging.getLogger(__name__)

# Ids remembered for de-duplication. Duplicates come from an event reaching several of the
# socket's groups, or from catch-up racing live delivery; both within moments of each other.
DEDUP_WINDOW = 4096
# Every CONVERSA_EVENT_RECHECK_EVERY seconds a socket re-joins its groups and re-reads the log.
# Group memberships live in Redis: they expire after `group_expiry` (a day) and vanish when Redis
# restarts, which would leave an open socket silently deaf (Chatwoot #14703); re-joining is an
# idempotent, cheap set insert. The re-read repairs what the live feed lost while the socket stayed
# open (a group send that failed even on a fresh connection, messages lost with Redis, a full
# channel): decisions #34.


def _parse_event_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class EventStreamConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Subscribes to an audience's groups, says hello, catches up from the event log, then
    forwards live events, each id at most once per connection."""

    audience: Audience | None = None

    async def get_audience(self) -> Audience | int:
        """The audience, or a close code. Subclasses say who may listen; the base lets nobody."""
        return 4403

    async def connect(self) -> None:
        self._sent: set[int] = set()
        self._sent_order: deque[int] = deque()
        self._resumed = False
        self._rejoin: asyncio.Task[None] | None = None
        # The re-read covers (log max id two checks ago, log max id now]: an event that commits
        # late, below the last cursor, is still found on the next check.
        self._checked: tuple[int, int] = (0, 0)
        audience = await self.get_audience()
        # Accept before closing so the client sees our close code (a refused handshake reaches
        # browsers as a bare 1006).
        await self.accept()
        if isinstance(audience, int):
            await self.close(code=audience)
            return
        self.audience = audience
        # Join first, then read the log: an event committed in between arrives both ways and
        # is de-duplicated, never lost.
        await self._join()
        latest = await database_sync_to_async(current_event_id)()
        self._checked = (latest, latest)
        self._rejoin = asyncio.create_task(self._maintain_forever())
        await self._send_json({"event": "hello", "payload": {"last_event_id": latest}})
        after = _parse_event_id(query_param(self.scope, "last_event_id"))
        if after is not None:
            await self._resume(after, latest)

    async def _join(self) -> None:
        assert self.audience is not None
        for group in sorted(self.audience.groups):
            await self.channel_layer.group_add(group, self.channel_name)

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.CONVERSA_EVENT_RECHECK_EVERY)
            try:
                await self._join()
            except Exception:
                logger.exception("re-joining channel-layer groups failed")
            try:
                await self._recheck()
            except Exception:
                logger.exception("re-reading the event log failed")

    async def _recheck(self) -> None:
        assert self.audience is not None
        latest = await database_sync_to_async(current_event_id)()
        after = self._checked[0]
        result = await database_sync_to_async(missed)(self.audience, after, latest, frozenset(self._sent))
        self._checked = (self._checked[1], latest)
        if result.refetch is not None:
            await self._send_json(result.refetch)
            return
        for frame in result.frames:
            if self._first_time(frame["id"]):
                await self._send_json(frame)

    async def disconnect(self, code: int) -> None:
        if self._rejoin is not None:
            self._rejoin.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rejoin
        if self.audience is not None:
            for group in self.audience.groups:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _resume(self, after: int, latest: int | None = None) -> None:
        assert self.audience is not None
        self._resumed = True
        if latest is None:
            latest = await database_sync_to_async(current_event_id)()
        result = await database_sync_to_async(catch_up)(self.audience, after, latest)
        if result.refetch is not None:
            await self._send_json(result.refetch)
            return
        for frame in result.frames:
            if self._first_time(frame["id"]):
                await self._send_json(frame)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.audience is None or not text_data:
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if data.get("type") == "resume" and not self._resumed:
            after = _parse_event_id(data.get("last_event_id"))
            if after is not None:
                await self._resume(after)
        elif data.get("type") == "ping":
            await self._send_json({"event": "pong"})

    async def conversa_event(self, message: dict[str, Any]) -> None:
        """A live event from the channel layer (sent by realtime.services.publish)."""
        if self.audience is None:
            return
        targets = message.get("groups") or self.audience.groups
        if not self.audience.admits(message["event"], targets, message["payload"]):
            return
        if self._first_time(message["id"]):
            await self._send_json(event_frame(message["id"], message["event"], message["payload"]))

    def _first_time(self, event_id: int) -> bool:
        # A set of ids rather than "highest id sent": ids are assigned at insert but become
        # visible at commit, so concurrent transactions can deliver 11 before 10, and 10 must
        # still go out.
        if event_id in self._sent:
            return False
        self._sent.add(event_id)
        self._sent_order.append(event_id)
        if len(self._sent_order) > DEDUP_WINDOW:
            self._sent.discard(self._sent_order.popleft())
        return True

    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


def _audience(stream: str, user: Any, route: dict[str, Any]) -> Audience | int:
    try:
        return audience_for(stream=stream, user=user if user is not None else AnonymousUser(), route=route)
    except StreamRefused as refused:
        return refused.code


class AgentConsumer(EventStreamConsumer):
    """/ws/agent/: everything the user's inboxes need, live (the "agent" stream, defined by the
    inbox). Agents get their campaigns' general inboxes and their own personal inbox; supervisors
    also the "supervisors" group, limited to their campaigns (admins: all)."""

    async def get_audience(self) -> Audience | int:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return 4401
        return await database_sync_to_async(_audience)("agent", user, {})


class SandboxConsumer(EventStreamConsumer):
    """/ws/sandbox/<line_id>/: the demo's customer simulator (the "sandbox" stream, defined by
    whatsapp). Message events of one sandbox line (what the "customer" would see on her phone);
    refused for any other provider kind."""

    async def get_audience(self) -> Audience | int:
        return await database_sync_to_async(_audience)("sandbox", self.scope.get("user"),
                                                       dict(self.scope["url_route"]["kwargs"]))
