"""Who has a console open: the agent stream's consumer reports each socket it accepts and closes.
What presence means (an agent's status) is accounts' business; it registers its handlers in
AppConfig.ready(), as realtime sits below it. None registered: nothing is recorded."""

from __future__ import annotations

from typing import Protocol


class Opened(Protocol):
    def __call__(self, *, user_id: int) -> int | None: ...


class Closed(Protocol):
    def __call__(self, *, user_id: int, handle: int | None) -> None: ...


_opened: dict[str, Opened] = {}
_closed: dict[str, Closed] = {}


def register_presence(*, opened: Opened, closed: Closed) -> None:
    _opened["presence"], _closed["presence"] = opened, closed


def socket_opened(*, user_id: int) -> int | None:
    """A console socket of the user was accepted; returns a handle for socket_closed."""
    handler = _opened.get("presence")
    return handler(user_id=user_id) if handler is not None else None


def socket_closed(*, user_id: int, handle: int | None) -> None:
    handler = _closed.get("presence")
    if handler is not None:
        handler(user_id=user_id, handle=handle)
