"""How conversations and messages look outside: one definition for the REST API (inbox/api.py),
the websocket events (inbox/events.py) and the sandbox simulator's thread (web/views.py).

Events carry the summary (the row's own columns: no joins, so publishing costs no queries); the API
adds the joined and derived fields. A field means the same and has the same value in both."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from conversa.accounts.selectors import display_name
from conversa.core.api import datetime_writer
from conversa.core.media import signed_path
from conversa.inbox.models import Conversation, Message
from conversa.inbox.selectors import customer_name_of, row_values
from conversa.inbox.window import is_window_open, window_expires_at


class ConversationSummarySerializer(serializers.ModelSerializer):
    """What every conversation event carries."""

    customer_name = serializers.CharField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id", "campaign", "line", "status", "agent", "contact", "customer_phone", "customer_name",
            "customer_user_id", "customer_username", "last_message_at", "last_message_preview", "unread_count",
            "expired",
        ]
        read_only_fields = fields


class ConversationSerializer(ConversationSummarySerializer):
    agent_name = serializers.SerializerMethodField()
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    line_number = serializers.CharField(source="line.number", read_only=True)
    window_open = serializers.SerializerMethodField()
    window_expires_at = serializers.SerializerMethodField()

    class Meta(ConversationSummarySerializer.Meta):
        fields = [
            "id", "campaign", "campaign_name", "line", "line_number", "customer_phone", "customer_name",
            "customer_profile_name", "customer_user_id", "customer_username",
            "contact", "agent", "agent_name", "status", "is_outbound",
            "created_at", "attended_at", "closed_at", "last_inbound_at", "last_message_at",
            "last_message_preview", "unread_count", "window_open", "window_expires_at", "expired",
        ]
        read_only_fields = fields

    def get_agent_name(self, obj: Conversation) -> str | None:
        return display_name(obj.agent) if obj.agent else None

    def get_window_open(self, obj: Conversation) -> bool:
        return is_window_open(obj)

    def get_window_expires_at(self, obj: Conversation) -> str | None:
        expires = window_expires_at(obj)
        return expires.isoformat() if expires else None


class MessageSummarySerializer(serializers.ModelSerializer):
    """What every message event carries. `resend_offered`: the message is unconfirmed and nothing
    confirmed it in CONVERSA_UNCONFIRMED_AFTER — the agent may resend it (POST .../resend/)."""

    media_url = serializers.SerializerMethodField()
    resend_offered = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "direction", "kind", "body", "status", "error_code", "error_title",
            "provider_message_id", "media_url", "media_filename", "created_at", "resend_offered",
            "edited_at", "deleted_at",
        ]
        read_only_fields = fields

    def get_media_url(self, obj: Message) -> str | None:
        return obj.media_path or None

    def get_resend_offered(self, obj: Message) -> bool:
        return obj.status == Message.Status.UNCONFIRMED and obj.resend_offered_at is not None


class MessageSerializer(MessageSummarySerializer):
    sender_name = serializers.SerializerMethodField()

    class Meta(MessageSummarySerializer.Meta):
        fields = [
            "id", "conversation", "direction", "kind", "body", "payload", "media_url", "media_mime",
            "media_filename", "template", "sender", "sender_name", "status", "error_code", "error_title",
            "provider_message_id", "client_message_id", "reply_to", "created_at", "status_changed_at",
            "resend_offered",
        ]
        read_only_fields = fields

    def get_sender_name(self, obj: Message) -> str | None:
        return display_name(obj.sender) if obj.sender else None


class SimulatorMessageSerializer(MessageSummarySerializer):
    """The sandbox simulator's thread. It has no login, so its files are signed, expiring links
    (never the API's media view) and "" when there is none, as its page has always read them."""

    media_url = serializers.SerializerMethodField()
    media_error = serializers.SerializerMethodField()

    class Meta(MessageSummarySerializer.Meta):
        fields = [*MessageSummarySerializer.Meta.fields, "media_error"]
        read_only_fields = fields

    def get_media_url(self, obj: Message) -> str:
        return signed_path(obj.media.name, display_name=obj.media_filename) if obj.media else ""

    def get_media_error(self, obj: Message) -> str:
        return str(obj.payload.get("media_error", "")) if isinstance(obj.payload, dict) else ""


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    return dict(ConversationSummarySerializer(conversation).data)


def message_summary(message: Message) -> dict[str, Any]:
    return dict(MessageSummarySerializer(message).data)


# Lists are read more than anything else (issue 9): a ModelSerializer costs ~0.2 ms per row in
# field lookups, so pages of conversations and messages are built by the plain functions below.
# They answer exactly what ConversationSerializer / MessageSerializer answer (those stay the
# documented shape, the OpenAPI schema's source and the single-row answers);
# tests/inbox/test_list_shapes.py compares both over varied rows.


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    """`conversation_summary(conversation)` (the event payload), without DRF;
    tests/inbox/test_event_payloads.py holds the two equal."""
    c, _datetime = conversation, datetime_writer()
    return {
        "id": c.pk, "campaign": c.campaign_id, "line": c.line_id, "status": _text(c.status), "agent": c.agent_id,
        "contact": c.contact_id, "customer_phone": _text(c.customer_phone), "customer_name": _text(c.customer_name),
        "customer_user_id": _text(c.customer_user_id), "customer_username": _text(c.customer_username),
        "last_message_at": _datetime(c.last_message_at), "last_message_preview": _text(c.last_message_preview),
        "unread_count": None if c.unread_count is None else int(c.unread_count), "expired": c.expired,
    }


def message_payload(message: Message) -> dict[str, Any]:
    """`message_summary(message)` (the event payload), without DRF."""
    m, _datetime = message, datetime_writer()
    return {
        "id": m.pk, "conversation": m.conversation_id, "direction": _text(m.direction), "kind": _text(m.kind),
        "body": _text(m.body), "status": _text(m.status), "error_code": _text(m.error_code),
        "error_title": _text(m.error_title), "provider_message_id": _text(m.provider_message_id),
        "media_url": m.media_path or None, "media_filename": _text(m.media_filename),
        "created_at": _datetime(m.created_at),
        "resend_offered": m.status == Message.Status.UNCONFIRMED and m.resend_offered_at is not None,
        "edited_at": _datetime(m.edited_at), "deleted_at": _datetime(m.deleted_at),
    }


def conversation_list(conversations: Iterable[Conversation]) -> list[dict[str, Any]]:
    """`ConversationSerializer(conversations, many=True).data` for rows read with their campaign,
    line, agent and contact (search results): their plain rows, built as the inbox pages build theirs."""
    return conversation_rows(row_values(c) for c in conversations)


def conversation_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`conversation_list` of plain rows (the inbox selectors' `*_values`: no model instance)."""
    now, _datetime = timezone.now(), datetime_writer()
    window = datetime.timedelta(hours=settings.CONVERSA_WINDOW_HOURS)
    built = []
    for r in rows:
        inbound = r["last_inbound_at"]
        expires = None if inbound is None else inbound + window
        agent_name = None
        if r["agent_id"] is not None:  # display_name: the full name, else the username
            agent_name = (f"{r['agent_first_name']} {r['agent_last_name']}".strip() or r["agent_username"])
        built.append({
            "id": r["id"], "campaign": r["campaign_id"], "campaign_name": _text(r["campaign_name"]),
            "line": r["line_id"], "line_number": _text(r["line_number"]),
            "customer_phone": _text(r["customer_phone"]), "customer_name": _text(customer_name_of(r)),
            "customer_profile_name": _text(r["customer_profile_name"]),
            "customer_user_id": _text(r["customer_user_id"]), "customer_username": _text(r["customer_username"]),
            "contact": r["contact_id"], "agent": r["agent_id"], "agent_name": agent_name,
            "status": _text(r["status"]), "is_outbound": r["is_outbound"], "created_at": _datetime(r["created_at"]),
            "attended_at": _datetime(r["attended_at"]), "closed_at": _datetime(r["closed_at"]),
            "last_inbound_at": _datetime(inbound), "last_message_at": _datetime(r["last_message_at"]),
            "last_message_preview": _text(r["last_message_preview"]), "unread_count": r["unread_count"],
            "window_open": expires is not None and now < expires,
            "window_expires_at": expires.isoformat() if expires else None, "expired": r["expired"],
        })
    return built


def message_list(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """`MessageSerializer(messages, many=True).data` for rows read with their sender (the thread's)."""
    _datetime = datetime_writer()
    return [{
        "id": m.pk, "conversation": m.conversation_id, "direction": _text(m.direction), "kind": _text(m.kind),
        "body": _text(m.body), "payload": m.payload, "media_url": m.media_path or None,
        "media_mime": _text(m.media_mime), "media_filename": _text(m.media_filename), "template": m.template_id,
        "sender": m.sender_id, "sender_name": display_name(m.sender) if m.sender else None,
        "status": _text(m.status), "error_code": _text(m.error_code), "error_title": _text(m.error_title),
        "provider_message_id": _text(m.provider_message_id), "client_message_id": _text(m.client_message_id),
        "reply_to": m.reply_to_id, "created_at": _datetime(m.created_at),
        "status_changed_at": _datetime(m.status_changed_at),
        "resend_offered": m.status == Message.Status.UNCONFIRMED and m.resend_offered_at is not None,
    } for m in messages]
