"""Who a customer is on a line: the phone number when the provider gives one, else the provider's
stable user id (Meta's business-scoped user id of customers who show only a username). Every
webhook item about a customer finds or opens the conversation through here."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.contacts.selectors import contact_for_customer
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import Line


@functools.lru_cache(maxsize=4096)
def _e164(phone: str, region: str) -> str:
    """A webhook's phone as E.164 ("" for none). Remembered: parsing with phonenumbers was ~6 % of a
    set-based webhook batch's CPU, and a burst is the same customers writing again and again."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    try:
        return normalize_phone(phone, strict=False)
    except InvalidPhone:
        return "+" + digits


@dataclass(frozen=True)
class Customer:
    phone: str  # E.164, or "" when the provider gave none
    user_id: str = ""
    profile_name: str = ""
    username: str = ""

    @classmethod
    def of(cls, *, phone: str, user_id: str = "", profile_name: str = "", username: str = "") -> Customer:
        """From a webhook item's values. A phone that does not parse is kept as its digits: never
        drop a customer's message over formatting."""
        e164 = _e164(phone, settings.CONVERSA_DEFAULT_REGION)
        return cls(phone=e164, user_id=user_id, profile_name=profile_name, username=username)

    def conversations(self, line: Line) -> Q:
        """Conversations of this customer on the line: by phone when known, else by user id."""
        if self.phone:
            return Q(line=line, customer_phone=self.phone)
        return Q(line=line, customer_phone="", customer_user_id=self.user_id)


def open_conversation_for(line: Line, customer: Customer, *,
                          is_outbound: bool = False) -> tuple[Conversation, bool]:
    """The customer's open conversation on the line (locked), or a new one in the general inbox;
    (conversation, created). What the provider now says about the customer (user id, username)
    is kept on it."""
    existing = (Conversation.objects.select_for_update().filter(customer.conversations(line))
                .exclude(status=Conversation.Status.CLOSED).first())
    if existing:
        existing.line = line  # the caller's, provider and all: no lazy load when its events are published
        _remember(existing, customer)
        return existing, False
    campaign = line.campaign
    contact = contact_for_customer(database_id=campaign.contact_database_id, phone=customer.phone,
                                   user_id=customer.user_id)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                line=line, campaign=campaign, customer_phone=customer.phone, customer_user_id=customer.user_id,
                customer_username=customer.username, customer_profile_name=customer.profile_name,
                contact=contact, is_outbound=is_outbound,
            )
    except IntegrityError:
        # Another message of the same customer opened it first: join that one.
        joined = Conversation.objects.select_for_update().filter(customer.conversations(line)).exclude(
            status=Conversation.Status.CLOSED).get()
        joined.line = line
        return joined, False
    return conversation, True


def _remember(conversation: Conversation, customer: Customer) -> None:
    changed = []
    for field, value in (("customer_user_id", customer.user_id), ("customer_username", customer.username)):
        if value and getattr(conversation, field) != value:
            setattr(conversation, field, value)
            changed.append(field)
    if changed:
        conversation.save(update_fields=changed)
