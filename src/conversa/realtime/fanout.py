"""Live fan-out once per process: the hub (decisions #43).

Each web process (each event loop serving websockets) has one `Hub`. It is the process's only
client of the channel layer for live events: one channel, added to each group that at least one
local socket listens to. The layer therefore carries an event to a process once, whatever the
number of its sockets (channels_redis' pub/sub layer in production: one Redis SUBSCRIBE per group
per process, one PUBLISH per group per event). The hub hands the event to its local sockets in
memory, its frame's JSON text built once, without a channel per socket, a queue hop through Redis
or Channels' per-message database cleanup (a trip through the single sync thread) per socket.

The event log stays the source of truth. Every CONVERSA_EVENT_RECHECK_EVERY seconds the hub
re-adds its groups (a subscribe that failed, memberships lost with Redis) and reads the ids of the
log's events for its groups, once for all its sockets; each socket is then given the ones it has
not handled (decisions #34: nothing lost stays missing).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from conversa.realtime.stream import (
    Frame,
    Payload,
    current_event_id,
    event_frame,
    load_events,
    recent_targets,
    refetch_frame,
)

logger = logging.getLogger(__name__)

# The channel-layer message type of an event (realtime.services.publish).
EVENT_MESSAGE = "conversa.event"
# Event ids the hub remembers, so an event addressed to several of its groups (a new conversation:
# its campaign and "supervisors") is handed out once, whichever group brought it first.
RECENT_WINDOW = 4096
# How long a subscribing socket waits for its groups' first subscription before it goes on; a
# Redis that does not answer must not hold connects (the repair read covers what it misses).
SUBSCRIBE_WAIT = 2.0


@dataclass
class LiveEvent:
    id: int
    type: str
    payload: Payload
    targets: frozenset[str]

    @cached_property
    def text(self) -> str:
        """The frame as sent on the wire, serialised once for every socket of the process."""
        return json.dumps(event_frame(self.id, self.type, self.payload), separators=(",", ":"))


class Listener(Protocol):
    """A socket, as the hub sees it (consumers.EventStreamConsumer)."""

    @property
    def audience_groups(self) -> frozenset[str]: ...

    @property
    def floor(self) -> int | None:
        """The log's max id when it said hello (None until then): what precedes it is catch-up's
        business, not the re-read's."""

    def handled(self, event_id: int) -> bool:
        """Already sent, or examined and not for this socket."""

    def offer(self, event: LiveEvent) -> None:
        """Send it if admitted and not sent yet. Synchronous: queues the frame, never waits."""

    def refetch(self, frame: Frame) -> None: ...


class Hub:
    """The process's subscriptions and its local sockets (one per event loop, see `hub()`)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[Listener]] = {}
        self._syncing: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._undiscarded: set[str] = set()
        self._recent: set[int] = set()
        self._recent_order: deque[int] = deque()
        # (log max id at the check before last, at the last check): each repair re-reads from the
        # older one, so an event that committed late, below the last cursor, is still found.
        self._checked: tuple[int, int] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channel_lock = asyncio.Lock()
        self._maintainer = asyncio.get_running_loop().create_task(self._maintain_forever())

    # -- membership --------------------------------------------------------------------------

    async def join(self, listener: Listener) -> None:
        """Deliver to `listener` from now on. Returns once its groups are subscribed (or the
        layer failed or took longer than SUBSCRIBE_WAIT: the repair read covers the gap)."""
        waits: list[asyncio.Task[None]] = []
        for group in listener.audience_groups:
            members = self.members.get(group)
            if members is None:
                members = self.members[group] = set()
                waits.append(self._sync_soon(group))
            elif group in self._syncing:
                waits.append(self._syncing[group])
            members.add(listener)
        if waits:
            await asyncio.wait(waits, timeout=SUBSCRIBE_WAIT)

    async def leave(self, listener: Listener) -> None:
        waits: list[asyncio.Task[None]] = []
        for group in listener.audience_groups:
            members = self.members.get(group)
            if members is None:
                continue
            members.discard(listener)
            if not members:
                del self.members[group]
                waits.append(self._sync_soon(group))
        if waits:
            await asyncio.wait(waits, timeout=SUBSCRIBE_WAIT)

    @property
    def listeners(self) -> set[Listener]:
        found: set[Listener] = set()
        for members in self.members.values():
            found.update(members)
        return found

    async def _channel(self) -> str:
        # One channel per hub, whoever asks first: a socket's groups subscribe concurrently.
        async with self._channel_lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel(prefix="conversa-hub.")
                self._reader = asyncio.get_running_loop().create_task(self._read_forever(self.channel))
            return self.channel

    def _sync_soon(self, group: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._sync(group))
        self._syncing[group] = task
        task.add_done_callback(lambda done: self._syncing.pop(group, None) if self._syncing.get(group) is done
                               else None)
        return task

    async def _sync(self, group: str) -> None:
        """Make the layer's membership of `group` what the local sockets need: in while one listens,
        out once none does. Serialised per group, and decided when it runs, so a join and a leave
        racing each other (or the periodic re-subscribe) end in the right state."""
        async with self._locks.setdefault(group, asyncio.Lock()):
            try:
                channel = await self._channel()
                if group in self.members:
                    await self.layer.group_add(group, channel)
                else:
                    if group in self._undiscarded:
                        # Layers forget a membership locally before telling Redis: add it back so
                        # the discard reaches Redis again.
                        await self.layer.group_add(group, channel)
                    await self.layer.group_discard(group, channel)
                self._undiscarded.discard(group)
            except Exception:
                if group not in self.members:
                    self._undiscarded.add(group)
                logger.warning("channel-layer membership of %s failed; retried every %ss, the log re-read "
                               "delivers meanwhile", group, settings.CONVERSA_EVENT_RECHECK_EVERY, exc_info=True)

    # -- live delivery -----------------------------------------------------------------------

    async def _read_forever(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reading live events from the channel layer failed")
                await asyncio.sleep(1)  # back-off before the next read; the log re-read covers the gap
                continue
            try:
                self.dispatch(message)
            except Exception:
                logger.exception("handing out live event %s failed", message.get("id"))

    def dispatch(self, message: dict[str, Any]) -> None:
        """Hand one channel-layer message to the local sockets of its groups."""
        if message.get("type") != EVENT_MESSAGE or not self._first_arrival(message["id"]):
            return
        targets = frozenset(message.get("groups") or ())
        event = LiveEvent(message["id"], message["event"], message["payload"], targets)
        for listener in _union(self.members.get(group) for group in targets):
            try:
                listener.offer(event)
            except Exception:
                logger.exception("offering event %s to a socket failed", event.id)

    def _first_arrival(self, event_id: int) -> bool:
        if event_id in self._recent:
            return False
        self._recent.add(event_id)
        self._recent_order.append(event_id)
        if len(self._recent_order) > RECENT_WINDOW:
            self._recent.discard(self._recent_order.popleft())
        return True

    # -- maintenance: re-subscribe, re-read the log ------------------------------------------

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.CONVERSA_EVENT_RECHECK_EVERY)
            try:
                await self.resubscribe()
            except Exception:
                logger.exception("re-subscribing to channel-layer groups failed")
            try:
                await self.repair()
            except Exception:
                logger.exception("re-reading the event log failed")

    async def resubscribe(self) -> None:
        """Re-add every group (idempotent): subscriptions that failed, memberships that expired or
        vanished with Redis; retry the discards that failed."""
        for group in set(self.members) | self._undiscarded:
            await self._sync(group)

    async def repair(self, *, grace: float | None = None) -> int:
        """Give every socket the events for its groups it has not handled, from the log; returns
        how many deliveries were repaired. One max-id query and one indexed id query per process;
        the events themselves are loaded only when something is missing."""
        listeners = {listener for listener in self.listeners if listener.floor is not None}
        if not listeners:
            self._checked = None
            return 0
        latest = await database_sync_to_async(current_event_id)()
        oldest_floor = min(listener.floor for listener in listeners if listener.floor is not None)
        previous = self._checked or (oldest_floor, oldest_floor)
        after = previous[0]
        self._checked = (previous[1], latest)
        by_group = await database_sync_to_async(recent_targets)(set(self.members), after, latest)
        wanted = self._missing(listeners, by_group)
        if not wanted:
            return 0
        # Events that committed moments ago may still be on their way live: look again shortly.
        await asyncio.sleep(min(1.0, settings.CONVERSA_EVENT_RECHECK_EVERY / 4) if grace is None else grace)
        wanted = {listener: [i for i in ids if not listener.handled(i)] for listener, ids in wanted.items()}
        limit: int = settings.CONVERSA_EVENT_REPLAY_MAX_EVENTS
        to_load: set[int] = set()
        for listener, ids in list(wanted.items()):
            if len(ids) > limit:
                listener.refetch(refetch_frame("too many missed events", latest))
                del wanted[listener]
            else:
                to_load.update(ids)
        if not to_load:
            return 0
        logged = await database_sync_to_async(load_events)(to_load)
        events = {i: LiveEvent(i, e.type, e.payload, e.targets) for i, e in logged.items()}
        repaired = 0
        for listener, ids in wanted.items():
            for event_id in sorted(ids):
                if event_id in events and not listener.handled(event_id):
                    listener.offer(events[event_id])
                    repaired += 1
        if repaired:
            logger.warning("live feed lost %s deliveries of %s events; delivered from the event log",
                           repaired, len(events))
        return repaired

    @staticmethod
    def _missing(listeners: Iterable[Listener], by_group: dict[str, set[int]]) -> dict[Listener, list[int]]:
        wanted: dict[Listener, list[int]] = {}
        for listener in listeners:
            ids = _union(by_group.get(group) for group in listener.audience_groups)
            floor = listener.floor
            missing = [i for i in ids if floor is not None and i > floor and not listener.handled(i)]
            if missing:
                wanted[listener] = missing
        return wanted

    def close(self) -> None:
        for task in (self._maintainer, self._reader, *self._syncing.values()):
            if task is not None:
                task.cancel()


def _union(sets: Iterable[set[Any] | None]) -> set[Any]:
    present = [s for s in sets if s]
    if len(present) == 1:
        return present[0]
    result: set[Any] = set()
    result.update(*present)
    return result


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """The running loop's hub (created on first use). One per web process in production; tests run
    a loop of their own per test."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None or found.layer is not get_channel_layer():
        if found is not None:  # CHANNEL_LAYERS changed (tests): start over on the new layer
            found.close()
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]  # its tasks went with the loop
        found = _hubs[loop] = Hub(get_channel_layer())
    return found


def existing_hub(loop: asyncio.AbstractEventLoop) -> Hub | None:
    return _hubs.get(loop)
