"""The plain case of a webhook batch set-based (issue 10, decisions #55): customers who write again
in a conversation that is open and waiting or attended, with text (no media to fetch, no quote to
resolve, no menu to answer, no expiry to lift). For all of them at once: one duplicate check, one
locking read of their conversations, one INSERT of the messages, one UPDATE of the conversations;
their events go out with the batch's (realtime.services.publishing_in_bulk). Everything else —
a new conversation, a menu answer, media — takes `receive_inbound`, one message at a time, with
the same outcome: stored once, the conversation's preview, window and unread count moved on, the
other apps' observers told, `message.created` published in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Field, Q
from django.utils import timezone

from conversa.core import media as stored_media
from conversa.inbox import hooks
from conversa.inbox.actions.common import preview
from conversa.inbox.actions.customers import Customer
from conversa.inbox.events import publish_message
from conversa.inbox.models import Conversation, Message
from conversa.realtime import event_types
from conversa.whatsapp.adapters.base import InboundMessage
from conversa.whatsapp.models import Line

# Fields of the conversation a plain message moves on (plus what the provider now says about the
# customer, as `open_conversation_for` keeps it).
UPDATED_FIELDS = ["last_inbound_at", "last_message_at", "last_message_preview", "customer_profile_name",
                  "unread_count", "customer_user_id", "customer_username"]


@dataclass
class _Customer:
    index: int
    line: Line
    messages: Sequence[InboundMessage]
    customer: Customer
    conversation: Conversation | None = None
    new: list[InboundMessage] = field(default_factory=list)


def _plain(message: InboundMessage) -> bool:
    return not message.media_id and not message.reply_to_provider_id


def _key(line_id: int, customer: Customer) -> tuple[int, str, str]:
    return (line_id, customer.phone, "") if customer.phone else (line_id, "", customer.user_id)


def receive_inbound_in_bulk(customers: Sequence[tuple[Line, Sequence[InboundMessage]]]) -> list[bool]:
    """Each entry is one customer's messages of the batch, in order. Stores those of customers in
    the plain case and says which ones it took (True); the caller gives the others to
    `receive_inbound`. Inside the batch's transaction, under its per-customer advisory locks."""
    taken = [False] * len(customers)
    candidates: list[_Customer] = []
    for index, (line, messages) in enumerate(customers):
        if messages and all(_plain(m) for m in messages):
            last = messages[-1]
            customer = Customer.of(phone=last.from_phone, user_id=last.from_user_id,
                                   profile_name=last.profile_name, username=last.username)
            if customer.phone or customer.user_id:
                candidates.append(_Customer(index=index, line=line, messages=messages, customer=customer))
    if not candidates:
        return taken
    _lock_conversations(candidates)
    candidates = [c for c in candidates if c.conversation is not None]
    if not candidates:
        return taken
    known = _stored_ids(candidates)
    for candidate in candidates:
        seen = known.setdefault(candidate.line.pk, set())
        for message in candidate.messages:
            if message.provider_message_id not in seen:  # a replay, or twice in one batch
                seen.add(message.provider_message_id)
                candidate.new.append(message)
        taken[candidate.index] = True
    _store(candidates)
    return taken


def _lock_conversations(candidates: list[_Customer]) -> None:
    """Each candidate's open conversation, locked (id order: the same order every locker uses),
    when it is in the plain case; left None otherwise."""
    query = Q()
    for candidate in candidates:
        if candidate.customer.phone:
            query |= Q(line_id=candidate.line.pk, customer_phone=candidate.customer.phone)
        else:
            query |= Q(line_id=candidate.line.pk, customer_phone="", customer_user_id=candidate.customer.user_id)
    found: dict[tuple[int, str, str], Conversation] = {}
    for row in (Conversation.objects.select_for_update().filter(query)
                .exclude(status=Conversation.Status.CLOSED).order_by("pk")):
        found[_key(row.line_id, Customer(phone=row.customer_phone, user_id=row.customer_user_id))] = row
    claimed: set[int] = set()
    for candidate in candidates:
        conversation = found.get(_key(candidate.line.pk, candidate.customer))
        if (conversation is None or conversation.pk in claimed or conversation.expired
                or conversation.status not in (Conversation.Status.NEW, Conversation.Status.ATTENDED)):
            continue  # opened, menu, expired, or two spellings of one customer: one at a time
        claimed.add(conversation.pk)
        conversation.line = candidate.line  # provider and all: no lazy load when events are published
        candidate.conversation = conversation


def _stored_ids(candidates: list[_Customer]) -> dict[int, set[str]]:
    by_line: dict[int, set[str]] = {}
    for candidate in candidates:
        by_line.setdefault(candidate.line.pk, set()).update(m.provider_message_id for m in candidate.messages)
    query = Q()
    for line_id, ids in by_line.items():
        query |= Q(line_id=line_id, provider_message_id__in=sorted(ids))
    known: dict[int, set[str]] = {}
    for line_id, provider_id in Message.objects.filter(query).values_list("line_id", "provider_message_id"):
        known.setdefault(line_id, set()).add(provider_id or "")
    return known


def _store(candidates: list[_Customer]) -> None:
    now = timezone.now()
    rows: list[tuple[_Customer, Message]] = []
    for candidate in candidates:
        for inbound in candidate.new:
            rows.append((candidate, Message(
                conversation=candidate.conversation, line=candidate.line, direction=Message.Direction.INBOUND,
                kind=inbound.kind, body=inbound.body, payload=inbound.payload,
                media_provider_id=inbound.media_id, media_mime=inbound.media_mime,
                media_filename=stored_media.clean_display_name(inbound.media_filename),
                provider_message_id=inbound.provider_message_id, status=Message.Status.RECEIVED,
                provider_timestamp=inbound.timestamp or now)))
    if not rows:
        return
    Message.objects.bulk_create([message for _, message in rows])
    changed: dict[int, Conversation] = {}
    for (candidate, message), inbound in zip(rows, (m for c in candidates for m in c.new), strict=True):
        conversation = candidate.conversation
        assert conversation is not None and message.pk is not None
        # What receive_inbound does to the conversation, message by message, so each event carries
        # the conversation as it was after its message.
        conversation.last_inbound_at = now
        conversation.last_message_at = now
        conversation.last_message_preview = preview(inbound.body or f"[{inbound.kind}]")
        if inbound.profile_name:
            conversation.customer_profile_name = inbound.profile_name
        if inbound.from_user_id:
            conversation.customer_user_id = inbound.from_user_id
        if inbound.username:
            conversation.customer_username = inbound.username
        conversation.unread_count += 1
        changed[conversation.pk] = conversation
        hooks.customer_message_stored(conversation=conversation, message=message, created=False)
        publish_message(event_types.MESSAGE_CREATED, message)
    _update(list(changed.values()))


def _update(conversations: list[Conversation]) -> None:
    """UPDATED_FIELDS of each conversation, one statement sent for all (psycopg pipelines
    executemany). Not `bulk_update`: its CASE WHEN per row and field cost more Python than
    everything else the batch does."""
    fields: list[Field[object, object]] = []
    for name in UPDATED_FIELDS:
        found = Conversation._meta.get_field(name)
        assert isinstance(found, Field)
        fields.append(found)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    # Names from the model's own metadata, values as parameters.
    sql = f"UPDATE {quote(Conversation._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    rows = [[f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields] + [c.pk] for c in conversations]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
