"""What else a provider reports about a conversation besides new customer messages (registered
with whatsapp's webhook processing in InboxConfig.ready()): a message edited or deleted, something
that happened to the customer's account (a new number), a message a colleague sent from the
WhatsApp Business app on the same number, and another id for one of our sent messages. Each is
idempotent: a replayed webhook changes nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversa.inbox.actions.common import preview
from conversa.inbox.actions.customers import Customer, open_conversation_for
from conversa.inbox.events import publish_conversation, publish_message
from conversa.inbox.models import Conversation, Message
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import CustomerEvent, EchoMessage, IdAlias, MessageChange
from conversa.whatsapp.models import Line

# Where an echo came from, in Message.payload["origin"]: shown as "Sent from the WhatsApp app".
BUSINESS_APP = "business_app"


def apply_message_change(line: Line, change: MessageChange) -> Message | None:
    """An earlier message edited (its previous text kept in payload["history"]) or deleted (shown
    as "This message was deleted"); live in the thread. None when the message is not ours to
    change (unknown, another customer's) or the change was already applied."""
    direction = Message.Direction.OUTBOUND if change.echo else Message.Direction.INBOUND
    with transaction.atomic():
        message = (Message.objects.select_for_update(of=("self",)).select_related("conversation")
                   .filter(line=line, provider_message_id=change.original_id, direction=direction).first())
        if message is None or not _same_customer(message.conversation, change.from_phone, change.from_user_id):
            return None
        applied = list(message.payload.get("change_ids", []))
        if change.provider_message_id in applied or message.deleted_at:
            return None  # a replay, or a change after the deletion
        when = change.timestamp or timezone.now()
        payload = {**message.payload, "change_ids": [*applied, change.provider_message_id]}
        if change.action == "delete":
            # What the customer took back is not kept: the thread says it was deleted.
            message.body = ""
            payload.pop("history", None)
            message.deleted_at = when
        else:
            history = list(payload.get("history", []))
            history.append({"body": message.body, "until": when.isoformat()})
            payload["history"] = history
            message.body = change.body
            message.edited_at = when
        message.payload = payload
        message.save(update_fields=["body", "payload", "edited_at", "deleted_at"])
        publish_message(event_types.MESSAGE_UPDATED, message)
    return message


def _same_customer(conversation: Conversation, phone: str, user_id: str) -> bool:
    customer = Customer.of(phone=phone, user_id=user_id)
    if customer.phone:
        return conversation.customer_phone == customer.phone
    return bool(user_id) and conversation.customer_user_id == user_id


def apply_customer_event(line: Line, event: CustomerEvent) -> Message | None:
    """A system line in the customer's conversation with the provider's sentence; a new number or
    user id is applied to the open conversation (and its contact), so the next message of the
    customer joins it and replies reach the new number."""
    customer = Customer.of(phone=event.from_phone, user_id=event.from_user_id)
    if Message.objects.filter(line=line, provider_message_id=event.provider_message_id).exists():
        return None
    now = timezone.now()
    with transaction.atomic():
        conversation = (Conversation.objects.select_for_update().filter(customer.conversations(line))
                        .exclude(status=Conversation.Status.CLOSED).first())
        if conversation is None:
            # No open conversation: the event is about a customer nobody is talking to. Kept on the
            # latest one so the history shows it; nothing to open for it.
            conversation = (Conversation.objects.select_for_update().filter(customer.conversations(line))
                            .order_by("-created_at").first())
        if conversation is None:
            return None
        changed = []
        if event.event == "number_changed" and event.new_phone:
            new = Customer.of(phone=event.new_phone)
            busy = (Conversation.objects.filter(line=line, customer_phone=new.phone)
                    .exclude(status=Conversation.Status.CLOSED).exclude(pk=conversation.pk).exists())
            if not busy:
                conversation.customer_phone = new.phone
                changed.append("customer_phone")
                if conversation.contact_id and conversation.contact:
                    conversation.contact.phone = new.phone
                    conversation.contact.save(update_fields=["phone"])
        if event.new_user_id and event.new_user_id != conversation.customer_user_id:
            conversation.customer_user_id = event.new_user_id
            changed.append("customer_user_id")
        message = Message.objects.create(
            conversation=conversation, line=line, direction=Message.Direction.INBOUND, kind=Message.Kind.SYSTEM,
            body=event.body, payload={"event": event.event, "new_phone": event.new_phone,
                                      "new_user_id": event.new_user_id},
            provider_message_id=event.provider_message_id, status=Message.Status.RECEIVED,
            provider_timestamp=event.timestamp or now,
        )
        conversation.last_message_at = now
        conversation.save(update_fields=[*changed, "last_message_at"])
        publish_message(event_types.MESSAGE_CREATED, message)
    return message


def store_business_app_echo(line: Line, echo: EchoMessage) -> Message | None:
    """A message a colleague sent from the WhatsApp Business app on the line's number: stored as
    an outbound message of the customer's conversation (opened if none is), sent, with no sender
    and the origin "business_app". None when it was already stored."""
    if Message.objects.filter(line=line, provider_message_id=echo.provider_message_id).exists():
        return None
    customer = Customer.of(phone=echo.from_phone, user_id=echo.from_user_id)
    now = timezone.now()
    with transaction.atomic():
        conversation, created = open_conversation_for(line, customer, is_outbound=True)
        message = Message.objects.create(
            conversation=conversation, line=line, direction=Message.Direction.OUTBOUND, kind=echo.kind,
            body=echo.body, payload={**echo.payload, "origin": BUSINESS_APP},
            media_provider_id=echo.media_id, media_mime=echo.media_mime, media_filename=echo.media_filename[:255],
            provider_message_id=echo.provider_message_id, status=Message.Status.SENT,
            provider_timestamp=echo.timestamp or now, status_changed_at=now,
        )
        conversation.last_message_at = now
        conversation.last_message_preview = preview(echo.body or f"[{echo.kind}]")
        conversation.save(update_fields=["last_message_at", "last_message_preview"])
        if created:
            publish_conversation(event_types.CONVERSATION_CREATED, conversation)
        publish_message(event_types.MESSAGE_CREATED, message)
        if echo.media_id:
            from conversa.inbox import tasks  # the task module imports these actions

            transaction.on_commit(lambda: tasks.fetch_inbound_media.enqueue(message.pk))
    return message


def record_id_alias(line: Line, alias: IdAlias) -> bool:
    """Another id of one of our sent messages (receipts may later carry only that one)."""
    return bool(Message.objects.filter(line=line, provider_message_id=alias.provider_message_id,
                                       direction=Message.Direction.OUTBOUND)
                .filter(Q(provider_alias_id__isnull=True) | Q(provider_alias_id=alias.alias))
                .update(provider_alias_id=alias.alias))


def message_by_provider_ids(line: Line, ids: list[str]) -> Message | None:
    """A message of the line by any of the provider's ids for it (its own, or its alias)."""
    if not ids:
        return None
    return (Message.objects.filter(line=line, provider_message_id__in=ids).first()
            or Message.objects.filter(line=line, provider_alias_id__in=ids).first())


# What InboxConfig.ready() registers with whatsapp's webhook processing, by item type.
HANDLERS: dict[type, Callable[[Line, Any], object]] = {
    MessageChange: apply_message_change,
    CustomerEvent: apply_customer_event,
    EchoMessage: store_business_app_echo,
    IdAlias: record_id_alias,
}
