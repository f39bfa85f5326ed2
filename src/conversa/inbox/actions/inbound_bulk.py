"""The plain case of a webhook batch set-based (issue 10, decisions #55): customers who write with
text (no media to fetch, no quote to resolve) in a conversation that is open and waiting or
attended and not expired, or who open one where nothing greets them first (no menu, no welcome,
within business hours). For all of them at once: one duplicate check, one locking read of their
conversations, one read of the new ones' contacts, one INSERT of the new conversations, one of
the messages, one of the audit entries, one UPDATE of the conversations; their events go out with
the batch's (realtime.services.publishing_in_bulk). Everything else — a menu, an out-of-hours
answer, a welcome, media, an expired conversation — takes `receive_inbound`, one message at a
time, with the same outcome: stored once, the conversation's preview, window and unread count
moved on, the other apps' observers told, the events in order, the campaign's hand-out."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import CharField, Field, FileField, JSONField, Model, Q, TextField
from django.utils import timezone

from conversa.campaigns.models import Campaign
from conversa.contacts.selectors import contacts_for_customers
from conversa.core import media as stored_media
from conversa.inbox import hooks
from conversa.inbox.actions.assignment import hand_out_on_commit
from conversa.inbox.actions.common import preview
from conversa.inbox.actions.customers import Customer
from conversa.inbox.events import publish_conversation, publish_message
from conversa.inbox.models import AuditEntry, Conversation, Message
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
    created: bool = False
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
    now = timezone.now()
    _lock_conversations(candidates, now=now)
    candidates = [c for c in candidates if c.conversation is not None or c.created]
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
    _open_conversations([c for c in candidates if c.created and c.new])
    candidates = [c for c in candidates if c.conversation is not None]
    _store(candidates, now=now)
    return taken


def _opens_plainly(line: Line, now: datetime.datetime) -> bool:
    """A new conversation on this line just waits in the general inbox: no menu, no welcome
    message, no out-of-hours answer (receive_inbound's other branches)."""
    return (line.menu_id is None and not line.welcome_message
            and (line.time_group is None or line.time_group.is_open(now)))


def _lock_conversations(candidates: list[_Customer], *, now: datetime.datetime) -> None:
    """Each candidate's open conversation, locked (id order: the same order every locker uses),
    when it is in the plain case; `created` when she has none and one opens plainly; neither
    otherwise."""
    # One condition per line rather than one per customer (Django's cost grows with each Q).
    phones: dict[int, set[str]] = {}
    user_ids: dict[int, set[str]] = {}
    for candidate in candidates:
        if candidate.customer.phone:
            phones.setdefault(candidate.line.pk, set()).add(candidate.customer.phone)
        else:
            user_ids.setdefault(candidate.line.pk, set()).add(candidate.customer.user_id)
    query = Q()
    for line_id, numbers in phones.items():
        query |= Q(line_id=line_id, customer_phone__in=sorted(numbers))
    for line_id, ids in user_ids.items():
        query |= Q(line_id=line_id, customer_phone="", customer_user_id__in=sorted(ids))
    found: dict[tuple[int, str, str], Conversation] = {}
    for row in (Conversation.objects.select_for_update().filter(query)
                .exclude(status=Conversation.Status.CLOSED).order_by("pk")):
        found[_key(row.line_id, Customer(phone=row.customer_phone, user_id=row.customer_user_id))] = row
    claimed: set[int] = set()
    opening: set[tuple[int, str, str]] = set()
    for candidate in candidates:
        key = _key(candidate.line.pk, candidate.customer)
        conversation = found.get(key)
        if conversation is None:
            if key not in opening and _opens_plainly(candidate.line, now):
                opening.add(key)  # two spellings of one new customer: the second one at a time
                candidate.created = True
            continue
        if (conversation.pk in claimed or conversation.expired
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


def _open_conversations(news: list[_Customer]) -> None:
    """A conversation in the general inbox for each new customer (with her contact, if the
    campaign's database has her), as `open_conversation_for` opens one, in one INSERT. Another
    writer opening one of them meanwhile (an agent's outbound conversation) breaks the unique
    index: the batch's optimistic savepoint then rolls back and its items go one at a time."""
    if not news:
        return
    contacts = contacts_for_customers([
        (c.line.campaign.contact_database_id, c.customer.phone, "" if c.customer.phone else c.customer.user_id)
        for c in news])
    opened = []
    for candidate in news:
        first = candidate.new[0]
        customer = Customer.of(phone=first.from_phone, user_id=first.from_user_id,
                               profile_name=first.profile_name, username=first.username)
        campaign = candidate.line.campaign
        contact = contacts.get((campaign.contact_database_id, customer.phone, "") if customer.phone
                               else (campaign.contact_database_id, "", customer.user_id))
        candidate.conversation = Conversation(
            line=candidate.line, campaign=campaign, customer_phone=customer.phone,
            customer_user_id=customer.user_id, customer_username=customer.username,
            customer_profile_name=customer.profile_name, contact=contact, is_outbound=False)
        opened.append(candidate.conversation)
    insert_rows(opened)


def _store(candidates: list[_Customer], *, now: datetime.datetime) -> None:
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
    insert_rows([message for _, message in rows])
    # The other apps' observers once for the batch (a reply to a bulk send may move a new
    # conversation to the send's campaign: before its events and hand-out, as receive_inbound does).
    opened: set[int] = set()
    observed: list[tuple[Conversation, Message, bool]] = []
    for candidate, message in rows:
        assert candidate.conversation is not None
        created = candidate.created and candidate.conversation.pk not in opened
        if created:
            opened.add(candidate.conversation.pk)
        observed.append((candidate.conversation, message, created))
    hooks.customer_messages_stored(stored=observed)
    changed: dict[int, Conversation] = {}
    audit: list[AuditEntry] = []
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
        created = candidate.created and conversation.pk not in changed
        changed[conversation.pk] = conversation
        if created:
            audit.append(AuditEntry(kind=AuditEntry.Kind.CREATED, conversation=conversation,
                                    contact=conversation.contact, data={"via": "inbound", "in_hours": True}))
            publish_conversation(event_types.CONVERSATION_CREATED, conversation)
        publish_message(event_types.MESSAGE_CREATED, message)
        if created and conversation.campaign.routing != Campaign.Routing.MANUAL:
            hand_out_on_commit(campaign_id=conversation.campaign_id)
    insert_rows(audit)
    _update(list(changed.values()))


def insert_rows(objects: Sequence[Model]) -> None:
    """`bulk_create` of new rows of one model (auto ids set on the objects, in order). On
    PostgreSQL one `INSERT … SELECT … FROM unnest(…)` with one array per column, bound on the
    server: Django's bulk_create prepared each value of each field through the field's methods
    (28 fields a message) and quoted them all into the query text in Python, the largest share
    of a batch's CPU after decisions #61. Values are the objects' attributes as they are (what
    `get_db_prep_save` would return for these fields: JSON written with the field's encoder, a
    file by its name, `auto_now_add` filled in). Rows are inserted and returned in array order."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns: list[str] = []
    types: list[str] = []
    params: list[list[object]] = []
    for f in meta.concrete_fields:
        if f is meta.pk:
            continue
        if isinstance(f, FileField) or getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            values: list[object] = [f.pre_save(obj, add=True) for obj in objects]
        else:
            values = list(map(attrgetter(f.attname), objects))
        if isinstance(f, JSONField):
            values = [None if v is None else json.dumps(v, cls=f.encoder) for v in values]
            db_type = "jsonb"
        else:
            if isinstance(f, CharField | TextField | FileField):
                values = [v if v is None or type(v) is str else str(v) for v in values]
            db_type = str(f.db_type(connection))
        columns.append(quote(f.column))
        types.append(db_type)
        params.append(values)
    # Identifiers and types from the model's own metadata; every value is a parameter. jsonb
    # travels as text (psycopg has no array dumper for JSON strings).
    arrays = ", ".join("%s::text[]" if t == "jsonb" else f"%s::{t}[]" for t in types)
    names = [f"c{n}" for n in range(len(columns))]
    selected = ", ".join(f"{name}::jsonb" if t == "jsonb" else name for name, t in zip(names, types, strict=True))
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
           f"SELECT {selected} FROM unnest({arrays}) AS v({', '.join(names)}) RETURNING {quote(meta.pk.column)}")
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)  # bound on the server; through Django's wrappers
    wrapper = CursorDebugWrapper if connection.queries_logged else CursorWrapper
    with wrapper(raw, connection) as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchall()
    for obj, (pk,) in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def _update(conversations: list[Conversation]) -> None:
    """UPDATED_FIELDS of each conversation in one statement. Not `bulk_update`: its CASE WHEN per
    row and field cost more Python than everything else the batch does. On PostgreSQL the rows go
    as one JSON document (`jsonb_to_recordset`: one parameter to quote, one statement to plan);
    elsewhere one UPDATE per row, sent together (executemany)."""
    fields: list[Field[object, object]] = []
    for name in UPDATED_FIELDS:
        found = Conversation._meta.get_field(name)
        assert isinstance(found, Field)
        fields.append(found)
    quote = connection.ops.quote_name
    table = quote(Conversation._meta.db_table)
    # Names and types from the model's own metadata, values as parameters.
    if connection.vendor == "postgresql":
        assignments = ", ".join(f"{quote(str(f.column))} = v.{quote(str(f.column))}" for f in fields)
        columns = ", ".join(f"{quote(str(f.column))} {f.db_type(connection)}" for f in fields)
        sql = (f"UPDATE {table} AS c SET {assignments} "  # noqa: S608
               f"FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, {columns}) WHERE c.{quote('id')} = v.id")
        values = [{"id": c.pk, **{str(f.column): getattr(c, f.attname) for f in fields}} for c in conversations]
        with connection.cursor() as cursor:
            cursor.execute(sql, [json.dumps(values, default=_iso)])
        return
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    sql = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    rows = [[f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields] + [c.pk] for c in conversations]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _iso(value: object) -> str:
    """Datetimes for the JSON rows, to the microsecond (DjangoJSONEncoder keeps milliseconds)."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in a conversation's updated fields")
