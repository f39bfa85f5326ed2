"""Websocket consumers: the agent console's event stream and the sandbox customer simulator's.

Frames sent (JSON text):
  {"event": "hello", "payload": {"last_event_id": N}}      first, on every connect
  {"id": 42, "event": "message.created", "payload": {...}}  an event (live or replayed)
  {"event": "refetch", "payload": {"reason": ..., "last_event_id": N}}
                                                           the client is too far behind: reload lists
Frames accepted: {"type": "resume", "last_event_id": N} (same as ?last_event_id=N), {"type": "ping"}.
With ?frames=batch a text frame may also be a JSON array of such frames, in order: what piled up
for the socket while its previous frame was being written (the console asks for it; one frame per
pending batch instead of one per event halves the frames of a burst such as conversation.created +
message.created).
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
from django.contrib.auth.models import AnonymousUser

from conversa.realtime import presence
from conversa.realtime.auth import query_param
from conversa.realtime.fanout import Hub, LiveEvent, hub
from conversa.realtime.stream import (
    Audience,
    Frame,
    StreamRefused,
    audience_for,
    catch_up,
    current_event_id,
)

logger = logging.getLogger(__name__)

# Ids remembered for de-duplication. Duplicates come from catch-up or the log re-read racing live
# delivery, within moments of each other.
DEDUP_WINDOW = 4096
# Frames waiting to be written to one socket. A client that reads slower than events come is
# closed with 1013 when this many pile up; it reconnects with its last id and catches up from the
# log instead of holding the process's memory.
OUTBOX_LIMIT = 2000
TRY_AGAIN_LATER = 1013
# The most frames one batched frame carries (?frames=batch).
BATCH_LIMIT = 200
# Scope key of the server's ASGI `send`, as uvicorn handed it over (realtime.routing keeps it).
# Channels' session middleware wraps `send` to save the session on HTTP responses; for every
# websocket frame it still read the lazy session twice, as much Python as the rest of a frame's
# way to the socket. websocket.send is not a message it saves on, so frames skip it.
SERVER_SEND = "conversa.server_send"


def _parse_event_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class EventStreamConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Subscribes to an audience's groups through the process's hub, says hello, catches up from
    the event log, then forwards live events, each id at most once per connection.

    A socket has no channel-layer channel of its own: the hub (realtime.fanout) receives each
    event once per process and offers it to the socket in memory; frames leave through one writer
    task per socket, so a slow client never holds up the others."""

    # No channel per socket (get_channel_layer() answers None for an alias not configured); Channels
    # then dispatches only what the client sends, and live frames never pass through its per-message
    # database cleanup.
    channel_layer_alias = "conversa-no-channel-per-socket"
    audience: Audience | None = None

    async def get_audience(self) -> Audience | int:
        """The audience, or a close code. Subclasses say who may listen; the base lets nobody."""
        return 4403

    # -- the hub's view of this socket (fanout.Listener) ---------------------------------------

    @property
    def audience_groups(self) -> frozenset[str]:
        return self.audience.groups if self.audience is not None else frozenset()

    @property
    def floor(self) -> int | None:
        return self._floor

    def handled(self, event_id: int) -> bool:
        return event_id in self._handled

    def offer(self, event: LiveEvent) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self._deliver(event)

    def refetch(self, frame: Frame) -> None:
        self._enqueue(json.dumps(frame, separators=(",", ":")))

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        self._handled: set[int] = set()
        self._handled_order: deque[int] = deque()
        self._floor: int | None = None
        self._resumed = False
        # Live events that arrive while hello and catch-up are being prepared wait here, so the
        # client gets hello first and the replay before what happened after it.
        self._held: list[LiveEvent] | None = []
        # Frames waiting for the writer, and the writer's wake-up while it has none (a deque and
        # one future rather than an asyncio.Queue: the frame of one event is queued on hundreds
        # of sockets at once).
        self._outbox: deque[str] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._hub: Hub | None = None
        self._batched = query_param(self.scope, "frames") == "batch"
        audience = await self.get_audience()
        # Accept before closing so the client sees our close code (a refused handshake reaches
        # browsers as a bare 1006).
        await self.accept()
        if isinstance(audience, int):
            await self.close(code=audience)
            return
        self.audience = audience
        self._writer = asyncio.create_task(self._write_forever())
        # Subscribe first, then read the log: an event committed in between arrives both ways and
        # is de-duplicated, never lost.
        self._hub = hub()
        await self._hub.join(self)
        try:
            latest = await database_sync_to_async(current_event_id)()
            self._floor = latest
            self._enqueue(json.dumps({"event": "hello", "payload": {"last_event_id": latest}},
                                     separators=(",", ":")))
            after = _parse_event_id(query_param(self.scope, "last_event_id"))
            if after is not None:
                await self._resume(after, latest)
        finally:
            self._release_held()

    async def disconnect(self, code: int) -> None:
        if self._hub is not None:
            hub_, self._hub = self._hub, None
            await hub_.leave(self)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _resume(self, after: int, latest: int | None = None) -> None:
        assert self.audience is not None
        self._resumed = True
        if self._held is None:
            self._held = []
        if latest is None:
            latest = await database_sync_to_async(current_event_id)()
        result = await database_sync_to_async(catch_up)(self.audience, after, latest)
        if result.refetch is not None:
            self.refetch(result.refetch)
            return
        for frame in result.frames:
            if self._first_time(frame["id"]):
                self._enqueue(json.dumps(frame, separators=(",", ":")))

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
                try:
                    await self._resume(after)
                finally:
                    self._release_held()
        elif data.get("type") == "ping":
            self._enqueue('{"event":"pong"}')

    # -- delivery ------------------------------------------------------------------------------

    def _release_held(self) -> None:
        held, self._held = self._held, None
        for event in held or ():
            self._deliver(event)

    def _deliver(self, event: LiveEvent) -> None:
        if self.audience is None or event.id in self._handled:
            return
        admitted = self.audience.admits(event.type, event.targets or self.audience.groups, event.payload)
        # Refused ids count as handled too: the log re-read then does not load them again.
        self._first_time(event.id)
        if admitted:
            self._enqueue(event.text)

    def _first_time(self, event_id: int) -> bool:
        # A set of ids rather than "highest id sent": ids are assigned at insert but become
        # visible at commit, so concurrent transactions can deliver 11 before 10, and 10 must
        # still go out.
        if event_id in self._handled:
            return False
        self._handled.add(event_id)
        self._handled_order.append(event_id)
        if len(self._handled_order) > DEDUP_WINDOW:
            self._handled.discard(self._handled_order.popleft())
        return True

    def _enqueue(self, text: str) -> None:
        if self._writer is None or self._writer.done():
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            logger.warning("a websocket client fell %s frames behind; closing it (it catches up on reconnect)",
                           OUTBOX_LIMIT)
            self._writer.cancel()
            # Kept referenced: the loop holds tasks only weakly.
            self._closing = asyncio.get_running_loop().create_task(self.close(code=TRY_AGAIN_LATER))
            return
        self._outbox.append(text)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    async def _write_forever(self) -> None:
        send = self.scope.get(SERVER_SEND) or self.base_send
        loop = asyncio.get_running_loop()
        while True:
            if not self._outbox:
                self._wake = loop.create_future()
                await self._wake
            outbox = self._outbox
            text = outbox.popleft()
            if self._batched and outbox:
                texts = [text]
                while len(texts) < BATCH_LIMIT and outbox:
                    texts.append(outbox.popleft())
                text = f"[{','.join(texts)}]"
            try:
                await send({"type": "websocket.send", "text": text})
            except Exception:
                # The client went away mid-write; its disconnect (from the server) ends the rest.
                logger.debug("writing to a closed websocket", exc_info=True)
                return


def _audience(stream: str, user: Any, route: dict[str, Any]) -> Audience | int:
    try:
        return audience_for(stream=stream, user=user if user is not None else AnonymousUser(), route=route)
    except StreamRefused as refused:
        return refused.code


class AgentConsumer(EventStreamConsumer):
    """/ws/agent/: everything the user's inboxes need, live (the "agent" stream, defined by the
    inbox). Agents get their campaigns' general inboxes and their own personal inbox; supervisors
    also the "supervisors" group, limited to their campaigns (admins: all)."""

    _presence: presence.SocketPresence | None = None

    async def get_audience(self) -> Audience | int:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return 4401
        return await database_sync_to_async(_audience)("agent", user, {})

    async def connect(self) -> None:
        await super().connect()
        if self.audience is not None:  # accepted: she has a console open (her status follows it)
            self._presence = await presence.heartbeat().open(user_id=self.scope["user"].pk)

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if self._presence is not None:
            socket, self._presence = self._presence, None
            await presence.heartbeat().close(socket)


class SandboxConsumer(EventStreamConsumer):
    """/ws/sandbox/<line_id>/: the demo's customer simulator (the "sandbox" stream, defined by
    whatsapp). Message events of one sandbox line (what the "customer" would see on her phone);
    refused for any other provider kind."""

    async def get_audience(self) -> Audience | int:
        return await database_sync_to_async(_audience)("sandbox", self.scope.get("user"),
                                                       dict(self.scope["url_route"]["kwargs"]))
