"""Where apps above the inbox join its webhook processing without the inbox importing them
(registered in their AppConfig.ready()): observers of each stored customer message, and handlers
of delivery statuses for messages the inbox does not know (bulk sends keep their own rows)."""

from __future__ import annotations

from collections.abc import Callable

from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.adapters.base import StatusUpdate
from conversa.whatsapp.models import Line

# (conversation, message, created) → True when it routed a new conversation itself (to another
# campaign's general inbox): the line's interactive menu is then not offered.
InboundObserver = Callable[[Conversation, Message, bool], bool]
# (line, update) → True when the status was about something of theirs and applied.
StatusFallback = Callable[[Line, StatusUpdate], bool]

_inbound_observers: list[InboundObserver] = []
_status_fallbacks: list[StatusFallback] = []


def register_inbound_observer(*, observer: InboundObserver) -> None:
    if observer not in _inbound_observers:
        _inbound_observers.append(observer)


def register_status_fallback(*, handler: StatusFallback) -> None:
    if handler not in _status_fallbacks:
        _status_fallbacks.append(handler)


def customer_message_stored(*, conversation: Conversation, message: Message, created: bool) -> bool:
    """Inside receive_inbound's transaction, after the message is stored. True if an observer
    routed the new conversation."""
    routed = False
    for observer in _inbound_observers:
        routed = observer(conversation, message, created) or routed
    return routed


def unknown_message_status(*, line: Line, update: StatusUpdate) -> bool:
    return any(handler(line, update) for handler in _status_fallbacks)
