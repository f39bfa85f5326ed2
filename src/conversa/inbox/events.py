"""Event payloads and audiences for conversation changes (what browsers receive). Payloads are the
summaries of inbox/serializers.py: the same fields, with the same values, as the REST API.

Every processed webhook message publishes two or three payloads, so they are built here by plain
functions rather than a ModelSerializer per payload (DRF's per-field setup was a quarter of the
worker's CPU per message, issue 10); tests/inbox/test_event_payloads.py holds them equal to
ConversationSummarySerializer / MessageSummarySerializer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from conversa.inbox.models import Conversation, Message
from conversa.realtime import groups
from conversa.realtime.services import publish
from conversa.whatsapp.adapters import adapter_class


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


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _datetime(value: datetime | None) -> str | None:
    """DRF's DateTimeField().to_representation (ISO 8601 in the current time zone, "Z" for UTC)."""
    if not value:
        return None
    if str(api_settings.DATETIME_FORMAT).lower() != ISO_8601 or not timezone.is_aware(value):
        return serializers.DateTimeField().to_representation(value)  # type: ignore[no-any-return]
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    """`ConversationSummarySerializer(conversation).data`, without DRF."""
    c = conversation
    return {
        "id": c.pk, "campaign": c.campaign_id, "line": c.line_id, "status": _text(c.status), "agent": c.agent_id,
        "contact": c.contact_id, "customer_phone": _text(c.customer_phone), "customer_name": _text(c.customer_name),
        "customer_user_id": _text(c.customer_user_id), "customer_username": _text(c.customer_username),
        "last_message_at": _datetime(c.last_message_at), "last_message_preview": _text(c.last_message_preview),
        "unread_count": None if c.unread_count is None else int(c.unread_count),
    }


def message_payload(message: Message) -> dict[str, Any]:
    """`MessageSummarySerializer(message).data`, without DRF."""
    m = message
    return {
        "id": m.pk, "conversation": m.conversation_id, "direction": _text(m.direction), "kind": _text(m.kind),
        "body": _text(m.body), "status": _text(m.status), "error_code": _text(m.error_code),
        "error_title": _text(m.error_title), "provider_message_id": _text(m.provider_message_id),
        "media_url": m.media_path or None, "media_filename": _text(m.media_filename),
        "created_at": _datetime(m.created_at),
        "resend_offered": m.status == Message.Status.UNCONFIRMED and m.resend_offered_at is not None,
        "edited_at": _datetime(m.edited_at), "deleted_at": _datetime(m.deleted_at),
    }


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
