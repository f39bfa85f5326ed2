"""What several inbox actions share: the lock on a conversation the user works on, and queuing an
outbound message (stored, announced, handed to the send task on commit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.selectors import is_supervisor, require_whatsapp_access
from conversa.campaigns.selectors import campaigns_for
from conversa.core import media as stored_media
from conversa.core.errors import Conflict, NotAllowed, NotFound
from conversa.inbox.events import publish_message
from conversa.inbox.models import Conversation, Message
from conversa.realtime import event_types
from conversa.whatsapp.models import MessageTemplate


def preview(text: str) -> str:
    return text.replace("\n", " ")[:200]


def owned_conversation(*, conversation_id: int, user: User, allow_supervisor: bool = False) -> Conversation:
    """Lock and return a conversation the user works on (404 if she may not even see it). Call
    inside the action's transaction."""
    require_whatsapp_access(user)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("line__provider", "campaign", "contact")
        .filter(pk=conversation_id, campaign__in=campaigns_for(user))
        .first()
    )
    if conversation is None:
        raise NotFound(_("Conversation not found."))
    if conversation.agent_id != user.pk and not (allow_supervisor and is_supervisor(user)):
        if conversation.agent_id is None:
            raise NotAllowed(_("Capture this conversation before acting on it."))
        raise NotFound(_("Conversation not found."))
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict(_("This conversation is closed."))
    return conversation


@dataclass(frozen=True)
class CheckedUpload:
    upload: UploadedFile
    kind: str  # the WhatsApp media kind
    sniffed: stored_media.Sniffed  # what the bytes are (never the browser's claim or the name)

    @property
    def display_name(self) -> str:
        """The name people see (the sender's, cleaned); the stored name is random."""
        return stored_media.clean_display_name(self.upload.name or "") or f"file.{self.sniffed.extension}"


def queue_outbound(*, conversation: Conversation, sender: User | None, kind: str, body: str,
                   template: MessageTemplate | None = None, payload: dict[str, Any] | None = None,
                   media: CheckedUpload | None = None, client_message_id: str | None = None,
                   reply_to: Message | None = None) -> Message:
    """Persist the message as queued, then (on commit) hand it to the send task. Runs inside the
    calling action's transaction (the conversation is locked by it)."""
    now = timezone.now()
    message = Message(
        conversation=conversation, line_id=conversation.line_id, direction=Message.Direction.OUTBOUND,
        kind=kind, body=body, template=template, payload=payload or {}, sender=sender,
        client_message_id=client_message_id, status=Message.Status.QUEUED, reply_to=reply_to,
        next_attempt_at=now,
    )
    if media is not None:
        # Stored under a random name with the sniffed type's extension; the agent's file name is
        # only the display name.
        message.media_mime = media.sniffed.mime
        message.media_filename = media.display_name
        message.media.save(stored_media.new_storage_name(media.sniffed), media.upload, save=False)
    message.save()
    conversation.last_message_at = now
    changed = ["last_message_at"]
    if sender is not None or conversation.status != Conversation.Status.NEW:
        # An automatic answer (out of hours, welcome, menu) to a conversation waiting in the general
        # inbox keeps the customer's text as its preview: agents choose what to capture by it.
        conversation.last_message_preview = preview(body or f"[{kind}]")
        changed.append("last_message_preview")
    if sender is not None and conversation.first_response_at is None:
        # The reports' first response: the first message a person wrote, stored once (reports.selectors).
        conversation.first_response_at = message.created_at
        changed.append("first_response_at")
    conversation.save(update_fields=changed)
    publish_message(event_types.MESSAGE_CREATED, message)
    from conversa.inbox import tasks  # the task module imports the actions it calls

    transaction.on_commit(lambda: tasks.send_outbound_message.enqueue(message.pk))
    return message
