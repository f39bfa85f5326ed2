"""The customer behind a conversation: identifying her (an existing contact of the campaign's
database, or a new one) and editing a contact (whoever works with it, #24)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from conversa.contacts.models import Contact
from conversa.contacts.services import create_contact, update_contact
from conversa.core.errors import Conflict, NotAllowed, NotFound
from conversa.inbox import audit
from conversa.inbox.actions.common import owned_conversation
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation
from conversa.inbox.selectors import may_edit_contact, visible_contact
from conversa.realtime import event_types


def identify(*, conversation_id: int, agent: User, contact_id: int | None = None,
             data: dict[str, Any] | None = None) -> Conversation:
    """Link the conversation to a contact of the campaign's database: `contact_id`, or a new one
    made from `data` (its problems are the contacts layer's 400/409)."""
    with transaction.atomic():
        conversation = owned_conversation(conversation_id=conversation_id, user=agent, allow_supervisor=True)
        database_id = conversation.campaign.contact_database_id
        if contact_id is not None:
            contact = Contact.objects.filter(pk=contact_id, database_id=database_id).first()
            if contact is None:
                raise NotFound(_("Contact not found in this campaign's contact database."))
            busy = (Conversation.objects.filter(line=conversation.line, contact=contact)
                    .exclude(status=Conversation.Status.CLOSED).exclude(pk=conversation.pk).first())
            if busy:
                raise Conflict(_("This contact already has an open conversation (#%(conversation)s) on this line.")
                               % {"conversation": busy.pk})
            created = False
        else:
            data = dict(data or {})
            # A customer known only by user id has no phone on the conversation: the agent may type
            # one (she asked for it); otherwise the contact is kept by the user id alone.
            typed_phone = str(data.pop("phone", "") or "").strip()
            contact = create_contact(database=conversation.campaign.contact_database,
                                     phone=conversation.customer_phone or typed_phone, data=data,
                                     whatsapp_user_id=conversation.customer_user_id)
            created = True
        conversation.contact = contact
        conversation.save(update_fields=["contact"])
        # Every other open conversation of this customer on the campaign shows the name too.
        same_customer = Q(customer_phone=contact.phone) if contact.phone else Q(pk__in=[])
        if conversation.customer_user_id:
            same_customer |= Q(customer_user_id=conversation.customer_user_id)
        (Conversation.objects.filter(same_customer, campaign=conversation.campaign, contact__isnull=True)
         .exclude(status=Conversation.Status.CLOSED).update(contact=contact))
        audit.record(kind=AuditEntry.Kind.IDENTIFIED, actor=agent, conversation=conversation, contact=contact,
                     created=created)
        publish_conversation(event_types.CONTACT_IDENTIFIED, conversation)
    return conversation


def edit_contact(*, contact_id: int, user: User, data: dict[str, Any]) -> Contact:
    with transaction.atomic():
        contact = visible_contact(user, contact_id)
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if not may_edit_contact(user, contact):
            # Visible (she may search the campaign's contacts) but not hers to change: 403.
            raise NotAllowed(_("Only the agent attending this contact or a supervisor of its campaign can edit it."))
        update_contact(contact=contact, data=data)
        audit.record(kind=AuditEntry.Kind.CONTACT_EDITED, actor=user, contact=contact,
                     fields=sorted(k for k in data if k != "custom") + sorted((data.get("custom") or {}).keys()))
        for conversation in contact.conversations.exclude(status=Conversation.Status.CLOSED):
            publish_conversation(event_types.CONTACT_UPDATED, conversation)
    return contact
