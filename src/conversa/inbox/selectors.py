"""Reads: inbox queries and visibility. Every API and websocket goes through these."""

from __future__ import annotations

import datetime
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import BooleanField, Exists, F, ForeignKey, Model, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
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
from conversa.inbox.keyset import Cursor, cursor_of, merge, merged_keys, ranges, seek
from conversa.inbox.models import AuditEntry, Conversation, Message, Note

T = TypeVar("T")


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


INBOX_PAGE = 100
INBOX_PAGE_MAX = 200
THREAD_PAGE = 50
THREAD_PAGE_MAX = 200
# The console's thread refresh re-reads what the agent has on screen; past this it keeps the newest.
THREAD_SHOWN_MAX = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    """Rows of one page and the cursor that continues it (None: nothing more)."""

    rows: list[T]
    cursor: Cursor | None


def _page(rows: list[T], *, limit: int, field: str) -> Page[T]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, cursor=cursor_of(rows[-1], field=field) if more and rows else None)


# What an inbox row shows of its related rows (ConversationSerializer, the console's rows): the
# rest (contacts' custom values, lines' provider settings...) is not read for a list.
_ROW_RELATED = ("campaign__name", "line__number", "line__name", "contact__first_name", "contact__last_name",
                "agent__username", "agent__first_name", "agent__last_name")


def _rows(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    conversation_fields = [f.name for f in Conversation._meta.concrete_fields]
    return _with_related(qs).only(*conversation_fields, *_ROW_RELATED)


# The inbox pages' rows (both inboxes, the Closed tab): the same columns as `_rows`, but the related
# ones arrive as annotations and become one instance per distinct campaign, line, agent and contact
# of the page, not one of each per row (decisions #62: building ~4 model instances a row was most
# of a page's Python). Their other fields are deferred: reading one loads it, as with `only()`.
_LIST_RELATED = {"campaign": ("name",), "line": ("number", "name"), "contact": ("first_name", "last_name"),
                 "agent": ("username", "first_name", "last_name")}


def _list_rows(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return qs.annotate(**{f"row_{relation}_{name}": F(f"{relation}__{name}")
                          for relation, names in _LIST_RELATED.items() for name in names})


def _attach_related(rows: list[Conversation]) -> list[Conversation]:
    """Rows of `_list_rows` with their campaign, line, agent and contact set from the annotations."""
    for relation, names in _LIST_RELATED.items():
        field = Conversation._meta.get_field(relation)
        assert isinstance(field, ForeignKey)
        model: type[Model] = field.related_model  # type: ignore[assignment]
        order = [f.attname for f in model._meta.concrete_fields]  # from_db takes values in this order
        loaded = sorted(("id", *names), key=order.index)
        made: dict[int, Model] = {}
        for row in rows:
            pk = getattr(row, field.attname)
            if pk is None:
                continue
            related = made.get(pk)
            if related is None:
                values = [pk if name == "id" else getattr(row, f"row_{relation}_{name}") for name in loaded]
                related = made[pk] = model.from_db(row._state.db, loaded, values)
            field.set_cached_value(row, related)
    return rows


# The inbox pages as plain rows (the API's inbox pages, the console's lists): the columns they show,
# each row one dict, no model instance (decisions #64: building one per row, and its unused
# datetime columns, was most of a 100-row page's CPU after #62). Related names are `<relation>_<name>`.
_VALUE_FIELDS = ("id", "campaign_id", "line_id", "customer_phone", "customer_user_id", "customer_username",
                 "customer_profile_name", "contact_id", "agent_id", "status", "is_outbound", "created_at",
                 "attended_at", "closed_at", "last_inbound_at", "last_message_at", "last_message_preview",
                 "unread_count", "expired")
_VALUE_RELATED = {"campaign_name": F("campaign__name"), "line_number": F("line__number"),
                  "contact_first_name": F("contact__first_name"), "contact_last_name": F("contact__last_name"),
                  "agent_username": F("agent__username"), "agent_first_name": F("agent__first_name"),
                  "agent_last_name": F("agent__last_name")}


_VALUE_NAMES = (*_VALUE_FIELDS, *_VALUE_RELATED)


@dataclass(frozen=True)
class RowShape(Generic[T]):
    """How an inbox query reads its rows: the queryset's columns, and the rows made of what it returns."""

    query: Callable[[QuerySet[Conversation]], QuerySet[Conversation, Any]]
    rows: Callable[[list[Any]], list[T]]


def _as_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    # values_list and zip: Django's values() builds each dict in a Python comprehension, ~3 x slower.
    return [dict(zip(_VALUE_NAMES, row, strict=True)) for row in rows]


MODEL_ROWS: RowShape[Conversation] = RowShape(query=lambda qs: _list_rows(qs), rows=lambda rows: _attach_related(rows))
PLAIN_ROWS: RowShape[dict[str, Any]] = RowShape(
    query=lambda qs: qs.annotate(**_VALUE_RELATED).values_list(*_VALUE_NAMES), rows=_as_dicts)


def customer_name_of(row: dict[str, Any]) -> str:
    """`Conversation.customer_name` of a plain row (its contact's name columns are None when it has none)."""
    if row["contact_id"] and row["contact_first_name"] is not None:
        full = f"{row['contact_first_name']} {row['contact_last_name']}".strip()
        return full or row["customer_profile_name"] or row["customer_username"]  # type: ignore[no-any-return]
    return row["customer_profile_name"] or row["customer_username"]  # type: ignore[no-any-return]


def row_values(conversation: Conversation) -> dict[str, Any]:
    """A conversation read with its related rows (`_rows`) as the plain row `_value_rows` reads."""
    c = conversation
    row = {name: getattr(c, name) for name in _VALUE_FIELDS}
    contact, agent = c.contact if c.contact_id else None, c.agent if c.agent_id else None
    row.update(campaign_name=c.campaign.name if c.campaign_id else None,
               line_number=c.line.number if c.line_id else None,
               contact_first_name=contact.first_name if contact else None,
               contact_last_name=contact.last_name if contact else None,
               agent_username=agent.username if agent else None,
               agent_first_name=agent.first_name if agent else None,
               agent_last_name=agent.last_name if agent else None)
    return row


def campaign_ids_for(user: AnyUser) -> list[int]:
    """The user's campaigns as literal ids: an IN (subquery) hides the partial index from the planner."""
    return sorted(campaigns_for(user).values_list("id", flat=True))


def _row_pk(row: Any) -> int:
    return row["id"] if isinstance(row, dict) else row.pk  # type: ignore[no-any-return]


def _row_value(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _merged_in_database(sources: list[QuerySet[Conversation]], *, after: Cursor | None, limit: int,
                        descending: bool, shape: RowShape[T]) -> Page[T]:
    """`merged_page` in one statement (PostgreSQL, decisions #77): the ranges' keys merged and cut by
    the database, the page's rows read by them, all in one snapshot (nothing leaves between keys
    and rows). The keys as an array, read once: with IN the planner may join them with a scan."""
    field = "last_message_at"
    keys, params = merged_keys([part for qs in sources
                                for part in ranges(qs, field=field, cursor=after, descending=descending)],
                               field=field, limit=limit + 1, descending=descending)
    quote = connections[sources[0].db].ops.quote_name
    page_keys = RawSQL(f"{quote(Conversation._meta.db_table)}.{quote('id')} = ANY(ARRAY({keys}))",  # noqa: S611 (compiled SQL)
                       params, output_field=BooleanField())
    sign = "-" if descending else ""
    query = Conversation.objects.filter(page_keys).order_by(f"{sign}{field}", f"{sign}id")
    return _page(shape.rows(list(shape.query(query))), limit=limit, field=field)


def merged_page(sources: list[QuerySet[Conversation]], *, after: Cursor | None, limit: int, descending: bool,
                shape: RowShape[T], admits: Callable[[Any], bool] | None = None) -> Page[T]:
    """One page, by (last_message_at, id), of several ordered index ranges (one per campaign).
    One range is read as it is. Several, on PostgreSQL: one statement, the ranges' keys merged in
    the database and the page's rows read by them. Elsewhere: each range's keys first (two
    columns), merged here, then the page's rows in one query by key (decisions #64: reading a full
    page of every range and dropping all but one page of them was a third of a two-campaign page's
    CPU). The cursor is the keys', so a row captured between the two reads is left out of the page
    without ending the pages early. With `admits` (a row still in one of the ranges) the rows are
    read by key alone and checked here (decisions #70)."""
    field = "last_message_at"
    if len(sources) == 1:
        rows = seek(shape.query(sources[0]), field=field, cursor=after, limit=limit + 1, descending=descending)
        return _page(shape.rows(rows), limit=limit, field=field)
    if connections[sources[0].db].vendor == "postgresql":
        return _merged_in_database(sources, after=after, limit=limit, descending=descending, shape=shape)
    keys = merge([seek(qs.values("id", field), field=field, cursor=after, limit=limit + 1, descending=descending)
                  for qs in sources], field=field, limit=limit + 1, descending=descending)
    shown = [key["id"] for key in keys[:limit]]
    if admits is None:
        found = shape.rows(list(shape.query(functools.reduce(operator.or_, sources).filter(pk__in=shown))))
    else:
        found = [row for row in shape.rows(list(shape.query(Conversation.objects.filter(pk__in=shown))))
                 if admits(row)]
    by_pk = {_row_pk(row): row for row in found}
    last = keys[limit - 1] if len(keys) > limit else None
    return Page(rows=[by_pk[pk] for pk in shown if pk in by_pk],
                cursor=Cursor(at=last[field], id=last["id"]) if last is not None else None)


def _general_page(user: AnyUser, *, after: Cursor | None, limit: int, shape: RowShape[T]) -> Page[T]:
    require_whatsapp_access(user)
    campaign_ids = campaign_ids_for(user)
    sources = [Conversation.objects.filter(status=Conversation.Status.NEW, agent__isnull=True, campaign_id=campaign_id)
               for campaign_id in campaign_ids]
    if not sources:
        return Page(rows=[], cursor=None)

    def still_waiting(row: Any) -> bool:  # the sources' condition, on a row read by key
        return (_row_value(row, "status") == Conversation.Status.NEW and _row_value(row, "agent_id") is None
                and _row_value(row, "campaign_id") in campaign_ids)

    return merged_page(sources, after=after, limit=limit, descending=False, shape=shape, admits=still_waiting)


def general_inbox(user: AnyUser, *, after: Cursor | None = None, limit: int = INBOX_PAGE) -> Page[Conversation]:
    """Unassigned conversations of her campaigns, oldest activity first. One ordered range of
    conv_new_by_campaign_idx (campaign, last_message_at, id; partial on new and unassigned) per
    campaign, merged (on PostgreSQL by the database, in one statement): no sort of the inbox,
    whatever its size."""
    return _general_page(user, after=after, limit=limit, shape=MODEL_ROWS)


def general_inbox_values(user: AnyUser, *, after: Cursor | None = None,
                         limit: int = INBOX_PAGE) -> Page[dict[str, Any]]:
    """`general_inbox` as plain rows (`_VALUE_FIELDS` and the related names)."""
    return _general_page(user, after=after, limit=limit, shape=PLAIN_ROWS)


def _personal_page(user: AnyUser, *, after: Cursor | None, limit: int, shape: RowShape[T]) -> Page[T]:
    require_whatsapp_access(user)
    qs = shape.query(Conversation.objects.filter(agent=user.pk).exclude(status=Conversation.Status.CLOSED))
    rows = seek(qs, field="last_message_at", cursor=after, limit=limit + 1, descending=True)
    return _page(shape.rows(rows), limit=limit, field="last_message_at")


def personal_inbox(user: AnyUser, *, after: Cursor | None = None, limit: int = INBOX_PAGE) -> Page[Conversation]:
    """Her open conversations, latest activity first: a backward range of conv_open_by_agent_idx
    (agent, last_message_at, id; partial on assigned and not closed)."""
    return _personal_page(user, after=after, limit=limit, shape=MODEL_ROWS)


def personal_inbox_values(user: AnyUser, *, after: Cursor | None = None,
                          limit: int = INBOX_PAGE) -> Page[dict[str, Any]]:
    """`personal_inbox` as plain rows (`_VALUE_FIELDS` and the related names)."""
    return _personal_page(user, after=after, limit=limit, shape=PLAIN_ROWS)


def visible_conversations(user: AnyUser) -> QuerySet[Conversation]:
    """What a user may open: supervisors their campaigns; agents the general inbox of their
    campaigns, every conversation assigned to them (closed ones included, for history), and those
    of their campaigns in which a colleague's note @mentions them (to read it and answer in a note;
    only its holder writes to the customer)."""
    if is_admin(user):
        return Conversation.objects.all()
    if is_supervisor(user):
        return Conversation.objects.filter(campaign__in=campaigns_for(user))
    if not has_whatsapp_skill(user):
        return Conversation.objects.none()
    mentioned = Exists(Note.mentions.through.objects.filter(note__conversation=OuterRef("pk"), user=user.pk))
    return Conversation.objects.filter(
        Q(agent=user.pk)
        | Q(Q(status=Conversation.Status.NEW, agent__isnull=True) | mentioned, campaign__in=campaigns_for(user))
    )


def mentions_user(*, conversation_id: int, user: AnyUser) -> bool:
    """Whether a note of the conversation @mentions the user."""
    return user.pk is not None and Note.mentions.through.objects.filter(
        note__conversation_id=conversation_id, user_id=user.pk).exists()


def _may_open(user: AnyUser, conversation: Conversation) -> bool:
    """`conversation` is one of `visible_conversations(user)`: the same rules, read on the row."""
    if is_admin(user):
        return True
    in_campaigns = lambda: (conversation.campaign_id is not None  # noqa: E731 - asked only when needed
                            and campaigns_for(user).filter(pk=conversation.campaign_id).exists())
    if is_supervisor(user):
        return in_campaigns()
    if not has_whatsapp_skill(user):
        return False
    if user.pk is not None and conversation.agent_id == user.pk:
        return True
    waiting = conversation.status == Conversation.Status.NEW and conversation.agent_id is None
    return ((waiting or mentions_user(conversation_id=conversation.pk, user=user))
            and in_campaigns())


def get_visible_conversation(user: AnyUser, conversation_id: int, *, with_related: bool = True) -> Conversation:
    """`with_related=False` for reads that need only the row (a thread page): joining its contact,
    agent, campaign and line was as much CPU as the page of messages. The row is read by its key and
    the visibility rules checked on it (decisions #64): her own conversation costs no campaign query."""
    require_whatsapp_access(user)
    rows = Conversation.objects.filter(pk=conversation_id)
    # The pane and side panel show the contact database's fields: joined too.
    conversation = (_with_related(rows).select_related("campaign__contact_database") if with_related
                    else rows).first()
    if conversation is None or not _may_open(user, conversation):
        # Same answer whether it does not exist or belongs to someone else: nothing leaks.
        raise NotFound(_("Conversation not found."))
    return conversation


def _thread(conversation: Conversation) -> QuerySet[Message]:
    """The thread in the order the customer wrote: two webhooks processed by different workers may
    be stored out of order, so inbound messages sort by the provider's timestamp. The expression is
    msg_thread_order_idx's own (conversation, COALESCE(provider_timestamp, created_at), id)."""
    return (Message.objects.filter(conversation=conversation.pk).select_related("sender", "template")
            .annotate(sort_at=Coalesce("provider_timestamp", "created_at")))


def conversation_messages(conversation: Conversation, *, before: Cursor | None = None,
                          limit: int = THREAD_PAGE) -> Page[Message]:
    """The newest `limit` messages before `before` (the newest of all without it), oldest first;
    the page's cursor loads the ones before it ("load earlier")."""
    rows = seek(_thread(conversation), field="sort_at", cursor=before, limit=limit + 1, descending=True,
                nullable=False)
    page = _page(rows, limit=limit, field="sort_at")
    page.rows.reverse()
    return page


def conversation_messages_from(conversation: Conversation, *, start: Cursor) -> Page[Message]:
    """Every message from `start` (included) to the newest, oldest first, at most THREAD_SHOWN_MAX
    (then the newest of them): what the console shows again when the thread changes."""
    qs = _thread(conversation).filter(Q(sort_at__gte=start.at), Q(sort_at__gt=start.at) | Q(id__gte=start.id))
    rows = list(qs.order_by("-sort_at", "-id")[:THREAD_SHOWN_MAX + 1])
    page = _page(rows, limit=THREAD_SHOWN_MAX, field="sort_at")
    if page.cursor is None:
        # Nothing hidden between `start` and the newest: earlier messages continue at `start`.
        earlier = _thread(conversation).filter(Q(sort_at__lte=start.at),
                                               Q(sort_at__lt=start.at) | Q(id__lt=start.id)).exists()
        page = Page(rows=page.rows, cursor=cursor_of(page.rows[-1], field="sort_at") if earlier and page.rows
                    else None)
    page.rows.reverse()
    return page


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


@dataclass(frozen=True)
class SystemLine:
    """A line of the thread that is no message: a transfer, a reassignment, a supervisor joining.
    Read from the audit trail; never sent to the customer."""

    pk: int
    sort_at: datetime.datetime
    system_line: str


def _system_text(entry: AuditEntry) -> str:
    data = entry.data or {}
    actor = str(data.get("actor_name") or (display_name(entry.actor) if entry.actor else _("The system")))
    if entry.kind == AuditEntry.Kind.JOINED:
        return _("%(name)s joined the conversation as supervisor.") % {"name": actor}
    if data.get("to_agent"):
        verb = (_("%(actor)s reassigned this conversation to %(agent)s") if data.get("by_supervisor")
                else _("%(actor)s transferred this conversation to %(agent)s"))
        text = verb % {"actor": actor, "agent": data.get("to_name") or _("another agent")}
    elif data.get("to_campaign"):
        text = _("%(actor)s sent this conversation to the general inbox of %(campaign)s") % {
            "actor": actor, "campaign": data.get("to_campaign_name", "")}
    else:
        text = _("%(actor)s sent this conversation back to the general inbox") % {"actor": actor}
    note = str(data.get("note") or "")
    return f"{text}: {note}" if note else f"{text}."


def thread_system_lines(conversation: Conversation, *, since: datetime.datetime | None,
                        until: datetime.datetime | None) -> list[SystemLine]:
    """Transfers, reassignments and supervisors joining between two moments of the thread."""
    entries = AuditEntry.objects.filter(
        conversation=conversation, kind__in=[AuditEntry.Kind.TRANSFERRED, AuditEntry.Kind.JOINED],
    ).select_related("actor").order_by("created_at", "id")
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    return [SystemLine(pk=e.pk, sort_at=e.created_at, system_line=_system_text(e)) for e in entries[:200]]


def supervisor_joined(*, conversation_id: int, user: AnyUser) -> bool:
    """A supervisor writes in an agent's conversation only after joining it (announced in the thread)."""
    return bool(user.pk) and is_supervisor(user) and AuditEntry.objects.filter(
        conversation_id=conversation_id, kind=AuditEntry.Kind.JOINED, actor_id=user.pk).exists()
