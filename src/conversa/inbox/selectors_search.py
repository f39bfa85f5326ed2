"""Reads for search and history: conversations found by name, phone or text, the Closed list,
and a customer's previous conversations with their read-only transcript.

Message text is searched with PostgreSQL's full-text search (the GIN index msg_body_fts_idx,
"simple" configuration: no stemming, every language alike; each word matches as a prefix), and
with a plain case-insensitive containment on SQLite. Names and phones are short columns of the
conversation and its contact: a containment on both databases (decisions #56)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser, is_supervisor, require_whatsapp_access
from conversa.campaigns.selectors import campaigns_for
from conversa.core.errors import InvalidInput, NotFound
from conversa.inbox.keyset import Cursor, seek
from conversa.inbox.models import Conversation, Message
from conversa.inbox.selectors import (
    INBOX_PAGE,
    MODEL_ROWS,
    PLAIN_ROWS,
    Page,
    RowShape,
    _page,
    _rows,
    campaign_ids_for,
    merged_page,
    visible_conversations,
)

SEARCH_MAX_CHARS = 100
SEARCH_RESULTS = 50
HISTORY_MAX = 20
_WORD = re.compile(r"\w+")
T = TypeVar("T")


def _text_matches(text: str) -> QuerySet[Message]:
    if connection.vendor == "postgresql":
        words = _WORD.findall(text)[:10]
        if not words:
            return Message.objects.none()
        # Only word characters reach the raw tsquery: "pedi:* & 240:*".
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), config="simple", search_type="raw")
        return Message.objects.annotate(fts=SearchVector("body", config="simple")).filter(fts=query)
    return Message.objects.filter(body__icontains=text)


def search_conversations(user: AnyUser, *, text: str, limit: int = SEARCH_RESULTS) -> list[Conversation]:
    """Conversations the user may open (hers, closed ones included; supervisors: their campaigns)
    whose customer's name or phone, or a message's text, matches; latest activity first."""
    require_whatsapp_access(user)
    text = (text or "").strip()
    if not text:
        return []
    if len(text) > SEARCH_MAX_CHARS:
        raise InvalidInput(_("Search for at most %(max)d characters.") % {"max": SEARCH_MAX_CHARS}, field="q")
    by_person = (Q(customer_profile_name__icontains=text) | Q(customer_username__icontains=text)
                 | Q(contact__first_name__icontains=text) | Q(contact__last_name__icontains=text))
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3 and len(digits) >= len(text.replace(" ", "")) - 2:  # a phone, maybe with +, spaces
        by_person |= Q(customer_phone__contains=digits) | Q(contact__phone__contains=digits)
    by_text = Q(pk__in=_text_matches(text).values("conversation_id"))
    visible = visible_conversations(user)
    found = _rows(visible.filter(by_person | by_text)).order_by("-last_message_at", "-id")
    return list(found[:limit])


def _closed_page(user: AnyUser, *, after: Cursor | None, limit: int, shape: RowShape[T]) -> Page[T]:
    require_whatsapp_access(user)
    if is_supervisor(user):
        sources = [Conversation.objects.filter(campaign_id=campaign_id, status=Conversation.Status.CLOSED)
                   for campaign_id in campaign_ids_for(user)]
        if not sources:
            return Page(rows=[], cursor=None)
        return merged_page(sources, after=after, limit=limit, descending=True, shape=shape)
    qs = shape.query(Conversation.objects.filter(agent=user.pk, status=Conversation.Status.CLOSED))
    rows = seek(qs, field="last_message_at", cursor=after, limit=limit + 1, descending=True)
    return _page(shape.rows(rows), limit=limit, field="last_message_at")


def closed_conversations(user: AnyUser, *, after: Cursor | None = None, limit: int = INBOX_PAGE) -> Page[Conversation]:
    """The Closed tab: her closed conversations, latest first (a backward range of
    conv_personal_inbox_idx: agent, status, last_message_at); a supervisor's, of her campaigns:
    one backward range of conv_general_inbox_idx (campaign, status, last_message_at) per campaign,
    merged, as the general inbox does, so no page sorts every closed conversation."""
    return _closed_page(user, after=after, limit=limit, shape=MODEL_ROWS)


def closed_conversations_values(user: AnyUser, *, after: Cursor | None = None,
                                limit: int = INBOX_PAGE) -> Page[dict[str, Any]]:
    """`closed_conversations` as plain rows (the console's Closed tab)."""
    return _closed_page(user, after=after, limit=limit, shape=PLAIN_ROWS)


def _same_customer(conversation: Conversation) -> Q:
    same = Q(pk__in=[])
    if conversation.contact_id:
        same |= Q(contact_id=conversation.contact_id)
    if conversation.customer_phone:
        same |= Q(customer_phone=conversation.customer_phone)
    elif conversation.customer_user_id:
        same |= Q(customer_user_id=conversation.customer_user_id, line_id=conversation.line_id)
    return same


def _previous(user: AnyUser, conversation: Conversation) -> QuerySet[Conversation]:
    return _rows(Conversation.objects.filter(_same_customer(conversation), status=Conversation.Status.CLOSED,
                                             campaign__in=campaigns_for(user)).exclude(pk=conversation.pk))


def previous_conversations(user: AnyUser, conversation: Conversation) -> list[Conversation]:
    """The customer's earlier closed conversations in the user's campaigns, whoever attended
    them (she is serving this customer: his history is hers to read), newest first."""
    return list(_previous(user, conversation).order_by("-last_message_at", "-id")[:HISTORY_MAX])


def previous_conversation(user: AnyUser, conversation: Conversation, previous_id: int) -> Conversation:
    """One of the customer's earlier conversations, for its read-only transcript; NotFound otherwise."""
    found = _previous(user, conversation).filter(pk=previous_id).first()
    if found is None:
        raise NotFound(_("Conversation not found."))
    return found
