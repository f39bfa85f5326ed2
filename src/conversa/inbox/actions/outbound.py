"""An agent starts a conversation: an approved template to a phone, into her personal inbox."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.selectors import require_whatsapp_access
from conversa.campaigns.models import Campaign
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.models import Contact
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.contacts.services import ContactError, ContactExists, create_contact
from conversa.core.errors import Conflict, InvalidInput, NotFound
from conversa.inbox import audit
from conversa.inbox.actions.common import queue_outbound
from conversa.inbox.actions.replies import approved_template, prepare_template
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.inbox.selectors import name_for
from conversa.realtime import event_types
from conversa.whatsapp.models import Line


def start_outbound(*, agent: User, line_id: int, phone: str, template_id: int, params: list[str] | None,
                   contact_data: dict[str, Any] | None = None, header_file: UploadedFile | None = None,
                   button_params: list[str] | None = None) -> Conversation:
    """Open a conversation with an approved template (with its media header file and link button
    values when it has them); it goes to the agent's personal inbox."""
    require_whatsapp_access(agent)
    line = (Line.objects.select_related("campaign", "provider")
            .filter(pk=line_id, active=True, campaign__in=campaigns_for(agent)).first())
    if line is None:
        raise NotFound(_("Line not found."))
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as exc:
        raise InvalidInput(str(exc), field="phone") from exc
    template = approved_template(line, template_id)
    prepared = prepare_template(template=template, params=params, header_file=header_file,
                                button_params=button_params)
    campaign: Campaign = line.campaign
    with transaction.atomic():
        busy = (Conversation.objects.select_for_update().filter(line=line, customer_phone=e164)
                .exclude(status=Conversation.Status.CLOSED).first())
        if busy:
            holder = name_for(agent, busy.agent) if busy.agent else _("the general inbox")
            raise Conflict(_("%(phone)s already has an open conversation (in %(holder)s).")
                           % {"phone": e164, "holder": holder},
                           extra={"conversation": busy.pk if busy.agent_id == agent.pk else None})
        contact = Contact.objects.filter(database_id=campaign.contact_database_id, phone=e164).first()
        if contact is None and contact_data:
            try:
                contact = create_contact(database=campaign.contact_database, phone=e164, data=contact_data)
            except ContactError as exc:
                raise exc.nested_under("contact") from exc
            except ContactExists as exc:  # created by someone else a moment ago
                contact = exc.contact
        now = timezone.now()
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(
                    line=line, campaign=campaign, customer_phone=e164, contact=contact, agent=agent,
                    status=Conversation.Status.ATTENDED, is_outbound=True, attended_at=now,
                    customer_profile_name=contact.full_name if contact else "",
                )
        except IntegrityError as exc:
            raise Conflict(_("%(phone)s already has an open conversation.") % {"phone": e164}) from exc
        audit.record(kind=AuditEntry.Kind.OUTBOUND_STARTED, actor=agent, conversation=conversation,
                     template=template.name)
        publish_conversation(event_types.CONVERSATION_CREATED, conversation)
        queue_outbound(conversation=conversation, sender=agent, kind=Message.Kind.TEMPLATE, body=prepared.body,
                       template=template, payload=prepared.payload, media=prepared.header)
    return conversation
