"""Who has a console open: the agent stream's consumer reports each socket it accepts and closes,
and each web process keeps the presence of the sockets it holds alive with a heartbeat.
What presence means (an agent's status) is accounts' business; it registers its handlers in
AppConfig.ready(), as realtime sits below it. None registered: nothing is recorded.

The heartbeat (decisions #60): one task per process (per event loop), started with its first socket,
reports the handles of all its open sockets every CONVERSA_PRESENCE_HEARTBEAT_EVERY seconds in one
call (one UPDATE). A process killed with -9 or by the OOM killer reports nothing more, so its
sockets' presence goes stale and is removed by the sweep; a live socket's is refreshed for as long
as it stays open. A socket whose presence was removed anyway (the database unreachable for longer
than the stale interval) is reported as opened again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)


class Opened(Protocol):
    def __call__(self, *, user_id: int) -> int | None: ...


class Closed(Protocol):
    def __call__(self, *, user_id: int, handle: int | None) -> None: ...


class Refreshed(Protocol):
    def __call__(self, *, handles: Collection[int]) -> set[int]:
        """Mark these sockets as still open; returns the handles no longer recorded."""


_opened: dict[str, Opened] = {}
_closed: dict[str, Closed] = {}
_refreshed: dict[str, Refreshed] = {}


def register_presence(*, opened: Opened, closed: Closed, refreshed: Refreshed) -> None:
    _opened["presence"], _closed["presence"], _refreshed["presence"] = opened, closed, refreshed


def socket_opened(*, user_id: int) -> int | None:
    """A console socket of the user was accepted; returns a handle for socket_closed."""
    handler = _opened.get("presence")
    return handler(user_id=user_id) if handler is not None else None


def socket_closed(*, user_id: int, handle: int | None) -> None:
    handler = _closed.get("presence")
    if handler is not None:
        handler(user_id=user_id, handle=handle)


def sockets_refreshed(*, handles: Collection[int]) -> set[int]:
    """These sockets are still open; returns the handles whose presence is no longer recorded."""
    handler = _refreshed.get("presence")
    return handler(handles=handles) if handler is not None and handles else set()


@dataclass(eq=False)
class SocketPresence:
    """One open console socket's presence; the heartbeat may give it a new handle."""

    user_id: int
    handle: int | None


class Heartbeat:
    """The presence of the process's open console sockets (one per event loop, see `heartbeat()`)."""

    def __init__(self) -> None:
        self.sockets: set[SocketPresence] = set()
        self._task = asyncio.get_running_loop().create_task(self._beat_forever())

    async def open(self, *, user_id: int) -> SocketPresence:
        """Record a socket of the user as open and keep it so while it is."""
        socket = SocketPresence(user_id=user_id,
                                handle=await database_sync_to_async(socket_opened)(user_id=user_id))
        self.sockets.add(socket)
        return socket

    async def close(self, socket: SocketPresence) -> None:
        self.sockets.discard(socket)
        await database_sync_to_async(socket_closed)(user_id=socket.user_id, handle=socket.handle)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.CONVERSA_PRESENCE_HEARTBEAT_EVERY)
            try:
                await self.beat()
            except Exception:
                logger.exception("refreshing the presence of %s console sockets failed; retried in %ss",
                                 len(self.sockets), settings.CONVERSA_PRESENCE_HEARTBEAT_EVERY)

    async def beat(self) -> int:
        """Refresh the presence of every open socket; returns how many were recorded again."""
        by_handle = {socket.handle: socket for socket in self.sockets if socket.handle is not None}
        if not by_handle:
            return 0
        gone = await database_sync_to_async(sockets_refreshed)(handles=list(by_handle))
        for handle in gone:
            socket = by_handle[handle]
            if socket not in self.sockets:
                continue  # closed meanwhile
            # Her presence was removed while the socket stayed open (this process could not reach the
            # database for longer than the stale interval): she is here, record it again.
            socket.handle = await database_sync_to_async(socket_opened)(user_id=socket.user_id)
            if socket not in self.sockets:  # closed while being recorded: that close had the old handle
                await database_sync_to_async(socket_closed)(user_id=socket.user_id, handle=socket.handle)
        if gone:
            logger.warning("presence of %s open console sockets had been removed; recorded again", len(gone))
        return len(gone)


_heartbeats: dict[asyncio.AbstractEventLoop, Heartbeat] = {}


def heartbeat() -> Heartbeat:
    """The running loop's heartbeat (created with its first socket). One per web process in
    production; tests run a loop of their own per test."""
    loop = asyncio.get_running_loop()
    found = _heartbeats.get(loop)
    if found is None:
        for stale in [other for other in _heartbeats if other.is_closed()]:
            del _heartbeats[stale]  # its task went with the loop
        found = _heartbeats[loop] = Heartbeat()
    return found

