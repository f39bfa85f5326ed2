"""Expired conversations: an open conversation whose 24-hour window closed with the customer's
message unanswered, or whose outbound template got no answer, is marked expired by a sweep. It
stays where it is (general or personal inbox) until an approved template is sent in it
(`reactivate`, from the reply path) or the customer writes again; housekeeping closes stale ones."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from conversa.inbox import audit
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.realtime import event_types

EXPIRY_BATCH = 500
UNANSWERED = "unanswered"  # the customer wrote and nobody answered within the window
TEMPLATE_UNANSWERED = "template_unanswered"  # the business's template got no answer


def _due(cutoff: datetime.datetime) -> Q:
    """Open, not expired, nothing (in or out) for a whole window: conv_expiry_due_idx's range."""
    return Q(status__in=[Conversation.Status.NEW, Conversation.Status.ATTENDED], expired=False,
             last_message_at__lt=cutoff)


def expiry_reason(*, last_inbound_at: datetime.datetime | None, business_at: datetime.datetime | None,
                  business_kind: str | None) -> str | None:
    """Why an idle conversation expires, or None (an agent's reply the customer left unanswered is
    not an expiry: the agent answered). `business_*`: the last message a person (or a template) sent."""
    if last_inbound_at is not None and (business_at is None or business_at < last_inbound_at):
        return UNANSWERED
    if business_kind == Message.Kind.TEMPLATE and (last_inbound_at is None or business_at is None
                                                   or last_inbound_at < business_at):
        return TEMPLATE_UNANSWERED
    return None


def expire_unanswered(*, now: datetime.datetime | None = None) -> int:
    """The sweep job: mark due conversations expired, each in its own small transaction with a
    conditional UPDATE (a message arriving meanwhile moves last_message_at, and the row is left
    alone). Audited with the reason and announced. Returns how many expired."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(hours=settings.CONVERSA_WINDOW_HOURS)
    business = (Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.OUTBOUND)
                .filter(Q(sender__isnull=False) | Q(kind=Message.Kind.TEMPLATE)).order_by("-created_at", "-id"))
    # expiry_reason() in SQL too: due conversations that never expire (an agent's reply left
    # unanswered) must not fill the batch and starve the ones that do.
    candidates = (Conversation.objects.filter(_due(cutoff))
                  .annotate(business_at=Subquery(business.values("created_at")[:1]),
                            business_kind=Subquery(business.values("kind")[:1]))
                  .filter(Q(last_inbound_at__isnull=False)
                          & (Q(business_at__isnull=True) | Q(business_at__lt=F("last_inbound_at")))
                          | Q(business_kind=Message.Kind.TEMPLATE)
                          & (Q(last_inbound_at__isnull=True) | Q(last_inbound_at__lt=F("business_at"))))
                  .order_by("last_message_at")
                  .values_list("pk", "last_inbound_at", "business_at", "business_kind")[:EXPIRY_BATCH])
    expired = 0
    for conversation_id, last_inbound_at, business_at, business_kind in candidates:
        reason = expiry_reason(last_inbound_at=last_inbound_at, business_at=business_at,
                               business_kind=business_kind)
        if reason is None:
            continue
        with transaction.atomic():
            if not Conversation.objects.filter(_due(cutoff), pk=conversation_id).update(expired=True, expired_at=now):
                continue
            conversation = Conversation.objects.select_related("contact", "line__provider").get(pk=conversation_id)
            audit.record(kind=AuditEntry.Kind.EXPIRED, conversation=conversation, reason=reason)
            publish_conversation(event_types.CONVERSATION_EXPIRED, conversation)
            expired += 1
    return expired


def reactivate(*, conversation: Conversation, actor: User | None, via: str) -> None:
    """Inside the caller's transaction, on the conversation it locked: a template went out (`via`
    "template") or the customer wrote ("customer"). The caller's own event carries the new state;
    a template also announces the reactivation."""
    if not conversation.expired:
        return
    conversation.expired = False
    conversation.save(update_fields=["expired"])
    audit.record(kind=AuditEntry.Kind.REACTIVATED, actor=actor, conversation=conversation, via=via)
    if via == "template":
        publish_conversation(event_types.CONVERSATION_REACTIVATED, conversation)
