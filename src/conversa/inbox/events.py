"""Event payloads and audiences for conversation changes (what browsers receive). Payloads are the
summaries of inbox/serializers.py: the same fields, with the same values, as the REST API.

Every processed webhook message publishes two or three payloads, so they are built by the plain
functions of inbox/serializers.py rather than a ModelSerializer per payload (DRF's per-field setup
was a quarter of the worker's CPU per message, issue 10)."""

from __future__ import annotations

from typing import Any

from conversa.inbox.models import Conversation, Message
from conversa.inbox.serializers import conversation_payload, message_payload
from conversa.realtime import groups
from conversa.realtime.services import publish
from conversa.whatsapp.adapters import adapter_class

__all__ = ["audience", "conversation_payload", "message_payload", "publish_conversation", "publish_message"]


def audience(conversation: Conversation, *extra_agents: int | None) -> list[str]:
    """Who may see this conversation now: its campaign while unassigned, else its agent;
    supervisors always; plus agents that just lost it (transfer out)."""
    targets = [groups.SUPERVISORS]
    if conversation.agent_id is None and conversation.status == Conversation.Status.NEW:
        targets.append(groups.campaign_group(conversation.campaign_id))
    if conversation.agent_id:
        targets.append(groups.agent_group(conversation.agent_id))
    targets.extend(groups.agent_group(a) for a in extra_agents if a)
    return targets


def publish_conversation(event_type: str, conversation: Conversation, *extra_groups: str,
                         **extra: Any) -> None:
    publish(event_type, {"conversation": conversation_payload(conversation), **extra},
            [*audience(conversation), *extra_groups])


def publish_message(event_type: str, message: Message) -> None:
    conversation = message.conversation
    targets = audience(conversation)
    if adapter_class(conversation.line.provider.kind).has_simulator:
        # The demo's customer simulator watches its line.
        targets.append(groups.line_group(conversation.line_id))
    publish(
        event_type,
        {"message": message_payload(message), "conversation": conversation_payload(conversation)},
        targets,
    )
