"""Event payloads and audiences for conversation changes (what browsers receive)."""

from __future__ import annotations

from typing import Any

from conversa.inbox.models import Conversation, Message
from conversa.realtime import groups
from conversa.realtime.services import publish
from conversa.whatsapp.adapters import adapter_class


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "campaign": conversation.campaign_id,
        "line": conversation.line_id,
        "status": conversation.status,
        "agent": conversation.agent_id,
        "contact": conversation.contact_id,
        "customer_phone": conversation.customer_phone,
        "customer_name": conversation.customer_name,
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "last_message_preview": conversation.last_message_preview,
        "unread_count": conversation.unread_count,
    }


def message_payload(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "error_title": message.error_title,
        "provider_message_id": message.provider_message_id or "",
        "media_url": message.media_path,
        "media_filename": message.media_filename,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


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
