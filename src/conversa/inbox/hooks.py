"""Where apps above the inbox join its webhook processing without the inbox importing them
(registered in their AppConfig.ready()): observers of each stored customer message, and handlers
of delivery statuses for messages the inbox does not know (bulk sends keep their own rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.adapters.base import StatusUpdate
from conversa.whatsapp.models import Line

# (conversation, message, created) → True when it routed a new conversation itself (to another
# campaign's general inbox): the line's interactive menu is then not offered.
InboundObserver = Callable[[Conversation, Message, bool], bool]
# The same for a webhook batch's messages stored set-based, in order: (conversation, message,
# created) each → the ids of the conversations it routed. One call per batch, so an observer can
# read what it needs for all of them at once.
InboundBatchObserver = Callable[[Sequence[tuple[Conversation, Message, bool]]], set[int]]
# (line, update) → True when the status was about something of theirs and applied.
StatusFallback = Callable[[Line, StatusUpdate], bool]

_inbound_observers: list[InboundObserver] = []
_batch_forms: dict[InboundObserver, InboundBatchObserver] = {}
_status_fallbacks: list[StatusFallback] = []


def register_inbound_observer(*, observer: InboundObserver, in_bulk: InboundBatchObserver | None = None) -> None:
    """`in_bulk`, when given, is the observer's batch form (same rules, called once per batch by
    `customer_messages_stored`); without it the batch calls `observer` for each message."""
    if observer not in _inbound_observers:
        _inbound_observers.append(observer)
    if in_bulk is not None:
        _batch_forms[observer] = in_bulk


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


def customer_messages_stored(*, stored: Sequence[tuple[Conversation, Message, bool]]) -> set[int]:
    """Inside a webhook batch's transaction (inbox.actions.inbound_bulk), once its messages are
    stored: each (conversation, message, created) in order, the conversations as the batch found or
    opened them. The ids of the conversations an observer routed."""
    routed: set[int] = set()
    for observer in _inbound_observers:
        in_bulk = _batch_forms.get(observer)
        if in_bulk is not None:
            routed |= in_bulk(stored)
            continue
        for conversation, message, created in stored:
            if observer(conversation, message, created):
                routed.add(conversation.pk)
    return routed


def unknown_message_status(*, line: Line, update: StatusUpdate) -> bool:
    return any(handler(line, update) for handler in _status_fallbacks)
