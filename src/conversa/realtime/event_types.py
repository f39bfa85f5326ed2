"""The names of the events the websocket stream carries: its wire protocol, what browsers and API
clients switch on. Realtime publishes whatever it is given; the apps that publish these names
import them from here (one catalogue, since accounts, whatsapp and inbox all use them and realtime
is the one layer below all three). tests/test_architecture.py keeps published literals in it."""

from __future__ import annotations

from typing import Final

# The conversation lifecycle (inbox).
CONVERSATION_CREATED: Final = "conversation.created"
CONVERSATION_CAPTURED: Final = "conversation.captured"  # an agent took it from the general inbox
CONVERSATION_ASSIGNED: Final = "conversation.assigned"  # automatic distribution gave it to an agent
CONVERSATION_READ: Final = "conversation.read"  # its agent opened the thread (unread count 0)
CONVERSATION_TRANSFERRED: Final = "conversation.transferred"
CONVERSATION_CLOSED: Final = "conversation.closed"
CONVERSATION_JOINED: Final = "conversation.joined"  # a supervisor joined it to write (inbox.actions.supervision)
CONVERSATION_EXPIRED: Final = "conversation.expired"  # its 24 h window closed unanswered (inbox.actions.expiry)
CONVERSATION_REACTIVATED: Final = "conversation.reactivated"  # a template brought an expired one back

# Messages (inbox); the sandbox simulator's stream carries only these.
MESSAGE_PREFIX: Final = "message."
MESSAGE_CREATED: Final = "message.created"
MESSAGE_UPDATED: Final = "message.updated"
MESSAGE_STATUS: Final = "message.status"

# The conversation's contact (inbox).
CONTACT_IDENTIFIED: Final = "contact.identified"
CONTACT_UPDATED: Final = "contact.updated"

# Private notes in a thread (inbox.actions.notes): never on the simulator's stream (no "message." prefix).
NOTE_CREATED: Final = "note.created"

# Agents (accounts).
AGENT_STATUS: Final = "agent.status"

ALL: Final = frozenset({
    CONVERSATION_CREATED, CONVERSATION_CAPTURED, CONVERSATION_ASSIGNED, CONVERSATION_READ,
    CONVERSATION_TRANSFERRED, CONVERSATION_CLOSED, CONVERSATION_JOINED, CONVERSATION_EXPIRED, CONVERSATION_REACTIVATED,
    MESSAGE_CREATED, MESSAGE_UPDATED, MESSAGE_STATUS, CONTACT_IDENTIFIED, CONTACT_UPDATED, AGENT_STATUS,
    NOTE_CREATED,
})
