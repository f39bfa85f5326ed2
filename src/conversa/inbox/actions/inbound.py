"""A customer's message arrives (registered with whatsapp's webhook processing in
InboxConfig.ready()): stored once, joined to the customer's open conversation or opening one
(menu, out of hours, distribution, welcome), and its media fetched afterwards."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.campaigns.models import Campaign
from conversa.core import media as stored_media
from conversa.core.errors import Conflict, NotFound
from conversa.inbox import audit, hooks
from conversa.inbox.actions.assignment import hand_out_on_commit
from conversa.inbox.actions.closing import close_by_system
from conversa.inbox.actions.common import preview, queue_outbound
from conversa.inbox.actions.customers import Customer, open_conversation_for
from conversa.inbox.actions.expiry import reactivate
from conversa.inbox.actions.menu import answer_menu, send_menu
from conversa.inbox.events import publish_conversation, publish_message
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.inbox.selectors import get_visible_conversation
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import InboundMessage
from conversa.whatsapp.models import Line, OutOfHours

OUT_OF_HOURS_REPEAT = datetime.timedelta(hours=1)


def receive_inbound(line: Line, inbound: InboundMessage) -> Message | None:
    """Store a customer's message once (None when it was already stored: a replay). Positional:
    the signature whatsapp's webhook processing calls (`register_webhook_handlers`), which applies
    each item in a savepoint of its own and, on an IntegrityError (another worker stored the same
    message meanwhile), applies it once more: the replay check then sees the other's row. So no
    savepoint of our own here (each costs two round trips per message)."""
    if Message.objects.filter(line=line, provider_message_id=inbound.provider_message_id).exists():
        return None
    # By phone, else (customers who show only a username) by the provider's user id.
    customer = Customer.of(phone=inbound.from_phone, user_id=inbound.from_user_id,
                           profile_name=inbound.profile_name, username=inbound.username)
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        conversation, created = open_conversation_for(line, customer)
        reply_to = None
        if inbound.reply_to_provider_id:
            reply_to = Message.objects.filter(line=line, provider_message_id=inbound.reply_to_provider_id).first()
        message = Message.objects.create(
            conversation=conversation, line=line, direction=Message.Direction.INBOUND,
            kind=inbound.kind, body=inbound.body, payload=inbound.payload,
            media_provider_id=inbound.media_id, media_mime=inbound.media_mime,
            media_filename=stored_media.clean_display_name(inbound.media_filename),
            provider_message_id=inbound.provider_message_id,
            status=Message.Status.RECEIVED, provider_timestamp=inbound.timestamp or now,
            reply_to=reply_to,
        )
        conversation.last_inbound_at = now
        conversation.last_message_at = now
        conversation.last_message_preview = preview(inbound.body or f"[{inbound.kind}]")
        if inbound.profile_name:
            conversation.customer_profile_name = inbound.profile_name
        # The row is locked (or was just created by us), so the in-memory count is exact.
        conversation.unread_count += 1
        conversation.save(update_fields=["last_inbound_at", "last_message_at", "last_message_preview",
                                         "customer_profile_name", "unread_count"])
        reactivate(conversation=conversation, actor=None, via="customer")  # the window is open again
        # Other apps' say (a reply to a bulk send is routed to its campaign; STOP opts out).
        routed = hooks.customer_message_stored(conversation=conversation, message=message, created=created)
        in_hours = not created or line.time_group is None or line.time_group.is_open(now)
        enters_menu = created and in_hours and line.menu_id is not None and not routed
        if enters_menu:
            conversation.status = Conversation.Status.MENU
            conversation.menu_id = line.menu_id
            conversation.save(update_fields=["status", "menu"])
        if created:
            audit.record(kind=AuditEntry.Kind.CREATED, conversation=conversation, via="inbound", in_hours=in_hours)
            publish_conversation(event_types.CONVERSATION_CREATED, conversation)
        publish_message(event_types.MESSAGE_CREATED, message)
        if created and not in_hours:
            _answer_out_of_hours(conversation, line, now)
        if enters_menu:
            if line.welcome_message:
                queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                               body=line.welcome_message)
            assert line.menu is not None
            send_menu(conversation=conversation, menu=line.menu)
        elif not created and conversation.status == Conversation.Status.MENU:
            answer_menu(conversation=conversation, inbound=inbound)
        elif created and conversation.status != Conversation.Status.CLOSED:
            if conversation.campaign.routing != Campaign.Routing.MANUAL:
                hand_out_on_commit(campaign_id=conversation.campaign_id)
            if in_hours and line.welcome_message:
                queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                               body=line.welcome_message)
        if inbound.media_id:
            from conversa.inbox import tasks  # the task module imports these actions

            transaction.on_commit(lambda: tasks.fetch_inbound_media.enqueue(message.pk))
    return message


def _answer_out_of_hours(conversation: Conversation, line: Line, now: datetime.datetime) -> None:
    """Outside the line's business hours: tell the customer (at most once an hour), then keep the
    conversation waiting in the general inbox or close it, as the line says."""
    already_told = Message.objects.filter(
        line=line, conversation__in=Conversation.objects.filter(Customer.of(
            phone=conversation.customer_phone, user_id=conversation.customer_user_id).conversations(line)),
        direction=Message.Direction.OUTBOUND,
        payload__system="out_of_hours", created_at__gte=now - OUT_OF_HOURS_REPEAT,
    ).exists()
    if line.out_of_hours_message and not already_told:
        queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                       body=line.out_of_hours_message, payload={"system": "out_of_hours"})
    if line.out_of_hours_action == OutOfHours.CLOSE:
        close_by_system(conversation_id=conversation.pk, reason="out_of_hours")
        conversation.refresh_from_db()


# --------------------------------------------------------------------------- the customer's media
def begin_media_download(*, message_id: int, max_attempts: int,
                         backoff: Callable[[int], float]) -> Message | None:
    """A download attempt starts: counted, and the message's `next_attempt_at` set `backoff(attempt)`
    seconds ahead, so if this attempt vanishes (its worker killed) the media sweep tries again
    then. None when there is nothing to fetch; past `max_attempts` it is a final failure."""
    with transaction.atomic():
        message = Message.objects.select_for_update(of=("self",)).select_related(
            "conversation__line__provider").filter(pk=message_id).first()
        if message is None or not message.media_provider_id or message.media or message.payload.get("media_failed"):
            return None
        attempt = int(message.payload.get("media_attempts", 0)) + 1
        if attempt > max_attempts:
            record_media_failure(message_id=message.pk, attempt=attempt - 1, final=True,
                                 error=str(message.payload.get("media_error") or "too many attempts"))
            return None
        message.payload = {**message.payload, "media_attempts": attempt}
        message.next_attempt_at = timezone.now() + datetime.timedelta(seconds=backoff(attempt))
        message.save(update_fields=["payload", "next_attempt_at"])
    return message


def record_media_failure(*, message_id: int, attempt: int, error: str, final: bool,
                         retry_at: datetime.datetime | None = None) -> Message:
    """Shown on the message: the attachment is still coming (retried at `retry_at`) or could not be
    had (final: the console offers a retry)."""
    with transaction.atomic():
        message = Message.objects.select_for_update(of=("self",)).select_related(
            "conversation__line__provider").get(pk=message_id)
        message.payload = {**message.payload, "media_attempts": attempt, "media_error": error}
        if final:
            message.payload["media_failed"] = True
        message.next_attempt_at = None if final else retry_at
        message.save(update_fields=["payload", "next_attempt_at"])
        publish_message(event_types.MESSAGE_UPDATED, message)
    return message


def retry_media_download(*, conversation_id: int, message_id: int, user: User) -> Message:
    """An agent asks to try a failed attachment again (the customer's file may be back, or the
    line's credentials fixed): the failure is cleared, the attempts start over, audited. Whoever
    may see the conversation may ask; anyone else gets the same 404 as for a missing one."""
    with transaction.atomic():
        conversation = get_visible_conversation(user, conversation_id)
        message = Message.objects.select_for_update(of=("self",)).filter(
            pk=message_id, conversation=conversation, direction=Message.Direction.INBOUND).first()
        if message is None:
            raise NotFound(_("Message not found."))
        if message.media or not message.media_provider_id or not message.payload.get("media_failed"):
            raise Conflict(_("This attachment is not waiting for a retry."))
        message.payload = {k: v for k, v in message.payload.items()
                           if k not in ("media_error", "media_failed", "media_attempts")}
        message.next_attempt_at = None
        message.save(update_fields=["payload", "next_attempt_at"])
        audit.record(kind=AuditEntry.Kind.MEDIA_RETRIED, actor=user, conversation=conversation,
                     message=message.pk)
        publish_message(event_types.MESSAGE_UPDATED, message)
        from conversa.inbox import tasks  # the task module imports these actions

        transaction.on_commit(lambda: tasks.fetch_inbound_media.enqueue(message.pk))
    return message


def store_inbound_media(*, message_id: int, content: bytes, provider_mime: str) -> Message:
    """The customer's file arrived: stored under a random name with the extension of its sniffed
    type; the customer's file name is only the display name."""
    with transaction.atomic():
        message = Message.objects.select_for_update(of=("self",)).select_related(
            "conversation__line__provider").get(pk=message_id)
        declared = message.media_mime or provider_mime
        sniffed = stored_media.sniff_bytes(content, declared_mime=declared)
        message.media.save(stored_media.new_storage_name(sniffed), ContentFile(content), save=False)
        # What the file is when we could tell; else what the provider declared (informational only:
        # it is served as application/octet-stream, as an attachment).
        message.media_mime = sniffed.mime if sniffed.known else declared.split(";")[0].strip()[:120]
        message.media_filename = stored_media.clean_display_name(message.media_filename)
        message.media_provider_id = ""
        message.payload = {k: v for k, v in message.payload.items() if k not in ("media_error", "media_failed")}
        message.next_attempt_at = None
        message.save(update_fields=["media", "media_mime", "media_filename", "media_provider_id", "payload",
                                    "next_attempt_at"])
        publish_message(event_types.MESSAGE_UPDATED, message)
    return message
