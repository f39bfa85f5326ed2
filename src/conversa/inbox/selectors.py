"""Reads: inbox queries and visibility. Every API and websocket goes through these."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from conversa.accounts.selectors import (
    AnyUser,
    display_name,
    has_whatsapp_skill,
    is_admin,
    is_supervisor,
    require_whatsapp_access,
)
from conversa.campaigns.models import Campaign
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.models import Contact
from conversa.core.errors import NotFound
from conversa.inbox.models import Conversation, Message


def may_know(viewer: AnyUser, user: AnyUser) -> bool:
    """Whether `viewer` may learn who `user` is: people sharing one of her campaigns (admins: all)."""
    if is_admin(viewer) or (user.pk is not None and user.pk == viewer.pk):
        return True
    return campaigns_for(viewer).filter(Q(agents=user.pk) | Q(supervisors=user.pk)).exists()


def name_for(viewer: AnyUser, user: AnyUser) -> str:
    """Another user's name as `viewer` may read it in errors and conflicts; a user outside the
    viewer's campaigns is "another agent", so ids cannot be probed for names."""
    return display_name(user) if may_know(viewer, user) else _("another agent")


def may_edit_contact(user: AnyUser, contact: Contact) -> bool:
    """Contacts are edited by whoever works with them: the agent attending an open conversation with
    the contact, a supervisor of a campaign using its contact database, or an admin."""
    if is_admin(user):
        return True
    if is_supervisor(user) and Campaign.objects.filter(
            supervisors=user.pk, active=True, contact_database_id=contact.database_id).exists():
        return True
    return (Conversation.objects.filter(contact=contact, agent=user.pk, campaign__in=campaigns_for(user))
            .exclude(status=Conversation.Status.CLOSED).exists())


def _with_related(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return qs.select_related("contact", "agent", "campaign", "line")


def general_inbox(user: AnyUser) -> QuerySet[Conversation]:
    require_whatsapp_access(user)
    qs = Conversation.objects.filter(
        status=Conversation.Status.NEW, agent__isnull=True, campaign__in=campaigns_for(user)
    )
    return _with_related(qs).order_by("last_message_at", "id")


def personal_inbox(user: AnyUser) -> QuerySet[Conversation]:
    require_whatsapp_access(user)
    qs = Conversation.objects.filter(agent=user.pk).exclude(status=Conversation.Status.CLOSED)
    return _with_related(qs).order_by("-last_message_at", "-id")


def visible_conversations(user: AnyUser) -> QuerySet[Conversation]:
    """What a user may open: supervisors their campaigns; agents the general inbox of their
    campaigns plus every conversation assigned to them (closed ones included, for history)."""
    if is_admin(user):
        return Conversation.objects.all()
    if is_supervisor(user):
        return Conversation.objects.filter(campaign__in=campaigns_for(user))
    if not has_whatsapp_skill(user):
        return Conversation.objects.none()
    return Conversation.objects.filter(
        Q(agent=user.pk) | Q(status=Conversation.Status.NEW, agent__isnull=True, campaign__in=campaigns_for(user))
    )


def get_visible_conversation(user: AnyUser, conversation_id: int) -> Conversation:
    require_whatsapp_access(user)
    conversation = _with_related(visible_conversations(user)).filter(pk=conversation_id).first()
    if conversation is None:
        # Same answer whether it does not exist or belongs to someone else: nothing leaks.
        raise NotFound(_("Conversation not found."))
    return conversation


def conversation_messages(conversation: Conversation) -> QuerySet[Message]:
    """Oldest first, in the order the customer wrote: two webhooks processed by different
    workers may be stored out of order, so inbound messages sort by the provider's timestamp."""
    return (conversation.messages.select_related("sender", "template")
            .order_by(Coalesce("provider_timestamp", "created_at"), "id"))


def visible_media_message(user: AnyUser, message_id: int) -> Message:
    """A message with a stored file, in a conversation the user may open (the conversation API's
    rules); NotFound otherwise, whether it does not exist or is someone else's."""
    message = (Message.objects.filter(pk=message_id, conversation__in=visible_conversations(user))
               .exclude(media="").first())
    if message is None:
        raise NotFound(_("File not found."))
    return message


def visible_contact(user: AnyUser, contact_id: int) -> Contact:
    """A contact of a database one of the user's campaigns uses; NotFound otherwise."""
    require_whatsapp_access(user)
    contact = Contact.objects.filter(pk=contact_id, database__campaigns__in=campaigns_for(user)).distinct().first()
    if contact is None:
        raise NotFound(_("Contact not found."))
    return contact
