"""The line's interactive menu: a state machine the customer walks before reaching an inbox
(status "menu"): a submenu, a campaign (the conversation enters its general inbox), or closing."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversa.campaigns.models import Campaign
from conversa.contacts.selectors import contact_for_customer
from conversa.inbox import audit
from conversa.inbox.actions.assignment import hand_out_on_commit
from conversa.inbox.actions.closing import close_by_system
from conversa.inbox.actions.common import queue_outbound
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import InboundMessage, ListRow, OutboundList
from conversa.whatsapp.models import InteractiveMenu, MenuOption


def _option_id(option: MenuOption) -> str:
    return f"menu-{option.menu_id}-option-{option.pk}"


def send_menu(*, conversation: Conversation, menu: InteractiveMenu) -> None:
    """Queue the menu as a WhatsApp list (inside the caller's transaction)."""
    rows = [ListRow(id=_option_id(o), title=o.title, description=o.description) for o in menu.options.all()]
    menu_list = OutboundList(body=menu.body, button=menu.button, rows=rows, header=menu.header, footer=menu.footer)
    queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.INTERACTIVE, body=menu_list.as_text(),
                   payload={"system": "menu", "menu": menu.pk, "list": dataclasses.asdict(menu_list)})


def _chosen_option(menu: InteractiveMenu, inbound: InboundMessage) -> MenuOption | None:
    """The option the customer picked: a list reply's id, or typing its number or its title."""
    options = list(menu.options.all())
    for option in options:
        if inbound.reply_id and _option_id(option) == inbound.reply_id:
            return option
    typed = inbound.body.strip().rstrip(".").lower()
    if typed.isdigit() and 1 <= int(typed) <= len(options):
        return options[int(typed) - 1]
    return next((o for o in options if o.title.lower() == typed), None)


def answer_menu(*, conversation: Conversation, inbound: InboundMessage) -> None:
    """The customer answered the menu (inside receive_inbound's transaction, the row locked)."""
    menu = conversation.menu
    if menu is None:  # the menu was deleted meanwhile
        _route_to_campaign(conversation, conversation.line.campaign, reason="menu_removed")
        return
    option = _chosen_option(menu, inbound)
    if option is None:
        if menu.wrong_choice_message:
            queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                           body=menu.wrong_choice_message)
        send_menu(conversation=conversation, menu=menu)
        return
    if option.action == MenuOption.Action.SUBMENU and option.submenu is not None:
        conversation.menu = option.submenu
        conversation.save(update_fields=["menu"])
        send_menu(conversation=conversation, menu=option.submenu)
    elif option.action == MenuOption.Action.CLOSE:
        if option.closing_message:
            queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                           body=option.closing_message)
        close_by_system(conversation_id=conversation.pk, reason="menu", option=option.title)
        conversation.refresh_from_db()
    else:
        if menu.handoff_message:
            queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                           body=menu.handoff_message)
        _route_to_campaign(conversation, option.campaign or conversation.line.campaign, reason="menu",
                           option=option.title)


def _route_to_campaign(conversation: Conversation, campaign: Campaign, **why: Any) -> None:
    """The menu is done: the conversation enters the campaign's general inbox."""
    conversation.campaign = campaign
    conversation.status = Conversation.Status.NEW
    conversation.menu = None
    if conversation.contact_id is None:
        conversation.contact = contact_for_customer(database_id=campaign.contact_database_id,
                                                    phone=conversation.customer_phone,
                                                    user_id=conversation.customer_user_id)
    conversation.save(update_fields=["campaign", "status", "menu", "contact"])
    audit.record(kind=AuditEntry.Kind.ROUTED, conversation=conversation, campaign=campaign.name, **why)
    publish_conversation(event_types.CONVERSATION_CREATED, conversation)
    if campaign.routing != Campaign.Routing.MANUAL:
        hand_out_on_commit(campaign_id=campaign.pk)


def route_menu_timeouts() -> int:
    """Customers who did not choose within the menu's timeout go to the line's campaign (a sweep job)."""
    now = timezone.now()
    routed = 0
    waiting = (Conversation.objects.filter(status=Conversation.Status.MENU)
               .select_related("menu", "line__campaign", "line__provider"))
    for candidate in waiting:
        timeout = datetime.timedelta(minutes=candidate.menu.timeout_minutes if candidate.menu else 0)
        if (candidate.last_inbound_at or candidate.created_at) > now - timeout:
            continue
        with transaction.atomic():
            conversation = (Conversation.objects.select_for_update(of=("self",))
                            .select_related("line__campaign", "line__provider")
                            .filter(pk=candidate.pk, status=Conversation.Status.MENU).first())
            if conversation is None:
                continue
            _route_to_campaign(conversation, conversation.line.campaign, reason="menu_timeout")
            routed += 1
    return routed
