"""Reads of contacts: the search an agent runs to identify a customer.

One query per page, never a count: the page is `limit + 1` rows in (first_name, last_name, id)
order, the extra row only telling that there is more, and the next page continues after the last
row shown (a keyset cursor), so a deep page costs what the first one does.

On PostgreSQL a trigram GIN index over UPPER(first_name), UPPER(last_name), UPPER(phone) and
UPPER(email) (`contact_search_trgm_idx`, migration 0002) serves the substring match — the very
expressions Django's `icontains` compares — and the btree `contact_by_name_idx` serves the order
when the term is short or common; the planner picks whichever reads less. Matching is what it
always was: a case-insensitive substring of any of the four fields (accents as typed).

A term typed as a phone number — digits, with or without a leading `+`, spaces, dashes, dots or
parentheses — matches the phone's digits (stored E.164: `+` and digits), so "+54 11 5555-0001" finds
+541155550001 as "1155550001" does. Its page is read by `_PHONE_PAGE_KEYS`, one statement: at most
`BOUNDED_MATCHES` + 1 matching keys from the trigram index; when there are no more than that, they
are sorted for the page, otherwise the name order is walked until the page is full (the term is then
common, so the walk is short). Left to itself the planner walked the name order for a term matching
1 % of the contacts, reading ~100 contacts per row of the page: it prices a walk's rows as nearly free
(decisions #74).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _

from conversa.contacts.models import Contact, ContactDatabase, ContactImport, ContactImportProblem
from conversa.core.api import MAX_ID
from conversa.core.errors import InvalidInput

# No field is longer than this (email, 254): a longer term cannot match anything.
MAX_TERM = 254
# A term with a letter or a sign in it is not a phone number, and a phone (E.164) has nothing else.
SEARCH_FIELDS = ("first_name", "last_name", "email")
NAME_ORDER = ("first_name", "last_name", "id")
# What a page of the API and of the contacts page shows of a contact (plain rows, decisions #64).
ROW_FIELDS = ("id", "database_id", "phone", "first_name", "last_name", "email", "custom", "created_at", "updated_at")
# A phone term with at most this many matches is sorted; a commoner one walks the name order.
BOUNDED_MATCHES = 2000
_PHONE_TERM = re.compile(r"\+?[0-9\s().-]*[0-9][0-9\s().-]*")
_NOT_DIGIT = re.compile(r"[^0-9]")


@dataclass(frozen=True)
class NameCursor:
    """A position in the (first_name, last_name, id) order."""

    first_name: str
    last_name: str
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.first_name, self.last_name, self.id], ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_name_cursor(value: str | None, *, field: str = "cursor") -> NameCursor | None:
    """The cursor of a query parameter: None when absent, a 400 naming `field` when malformed."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        first, last, pk = json.loads(raw.decode())
        valid = (isinstance(first, str) and isinstance(last, str) and len(first) <= 100 and len(last) <= 100
                 and "\x00" not in first + last
                 and isinstance(pk, int) and not isinstance(pk, bool) and 1 <= pk <= MAX_ID)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        valid = False
    if not valid:
        raise InvalidInput(_("%(field)s is not a valid cursor: use the link the previous page gave.")
                           % {"field": field}, field=field)
    return NameCursor(first_name=first, last_name=last, id=pk)


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    next: NameCursor | None  # where the next page starts; None on the last page


@dataclass(frozen=True)
class ContactRowPage:
    rows: list[dict[str, Any]]  # ROW_FIELDS of each contact
    next: NameCursor | None  # where the next page starts; None on the last page


def phone_digits(term: str) -> str:
    """The digits of a term typed as a phone number ("+54 9 11 5555-0001", "(011) 5555 0001",
    "55550001"); "" for any other term."""
    return _NOT_DIGIT.sub("", term) if _PHONE_TERM.fullmatch(term) else ""


def _after(cursor: NameCursor) -> Q:
    """Rows strictly after `cursor`. The `first_name >=` bound lets the index scan start there; the
    OR only breaks ties."""
    return Q(first_name__gte=cursor.first_name) & (
        Q(first_name__gt=cursor.first_name)
        | Q(first_name=cursor.first_name, last_name__gt=cursor.last_name)
        | Q(first_name=cursor.first_name, last_name=cursor.last_name, id__gt=cursor.id))


# The keys of a phone term's page (see the module's docstring). `matched` holds the first
# BOUNDED_MATCHES + 1 matches in no order (the trigram index's bitmap, or a scan stopped early when
# the term is common); one of the two branches runs, chosen by its size. UPPER(phone) is the
# trigram index's expression; a phone has no letters, so it is the phone. {after}: the cursor.
_PHONE_PAGE_KEYS = """
WITH matched AS MATERIALIZED (
    SELECT id, first_name, last_name FROM contacts_contact
    WHERE database_id = %s AND UPPER(phone) LIKE %s {after} LIMIT %s)
SELECT id FROM (
    SELECT id FROM matched WHERE (SELECT COUNT(*) FROM matched) <= %s
    ORDER BY first_name, last_name, id LIMIT %s) AS few
UNION ALL
SELECT id FROM (
    SELECT id FROM contacts_contact
    WHERE database_id = %s AND UPPER(phone) LIKE %s {after} AND (SELECT COUNT(*) FROM matched) > %s
    ORDER BY first_name, last_name, id LIMIT %s) AS many
"""
# Strictly after the cursor in (first_name, last_name, id) order: the name index's range.
_AFTER_ROW = "AND (first_name, last_name, id) > (%s, %s, %s)"


def _in_phone_page(*, database_id: int, digits: str, after: NameCursor | None, rows: int) -> RawSQL:
    """The condition "the contact is one of the phone term's page" (`_PHONE_PAGE_KEYS`)."""
    pattern = f"%{digits}%"  # digits only: nothing to escape
    cursor = [after.first_name, after.last_name, after.id] if after is not None else []
    sql = _PHONE_PAGE_KEYS.format(after=_AFTER_ROW if after is not None else "")
    params = [database_id, pattern, *cursor, BOUNDED_MATCHES + 1, BOUNDED_MATCHES, rows,
              database_id, pattern, *cursor, BOUNDED_MATCHES, rows]
    return _one_of_keys(sql, params)


def _one_of_keys(sql: str, params: Sequence[Any]) -> RawSQL:
    """The condition "the contact's id is one of those `sql` selects" (a page's keys). A condition,
    not `pk__in=`: the `in` lookup would drop repeated parameters. On PostgreSQL the keys are an
    array, read once, then by the primary key: with IN the planner may instead hash-join them with
    a scan of every contact."""
    keys = f"= ANY(ARRAY({sql}))" if connection.vendor == "postgresql" else f"IN ({sql})"
    return RawSQL(f"contacts_contact.id {keys}", params,  # noqa: S611 (SQL compiled or constant, values as parameters)
                  output_field=BooleanField())


def _page_query(*, database_id: int, term: str, after: NameCursor | None, limit: int,
                custom: dict[str, Any] | None) -> QuerySet[Contact] | None:
    """The query of a page: `limit + 1` contacts in name order (the extra one only tells that there
    is more); None when no contact can match."""
    if len(term) > MAX_TERM or "\x00" in term:  # no stored text holds it (PostgreSQL refuses NUL)
        return None
    digits = phone_digits(term)
    if digits and not custom:
        page = _in_phone_page(database_id=database_id, digits=digits, after=after, rows=limit + 1)
        return Contact.objects.filter(page).order_by(*NAME_ORDER)
    qs = Contact.objects.filter(database_id=database_id)
    for name, value in (custom or {}).items():
        qs = qs.filter(**{f"custom__{name}": value})
    if digits:
        qs = qs.filter(phone__icontains=digits)
    elif term:
        match = Q()
        for name in SEARCH_FIELDS:
            match |= Q(**{f"{name}__icontains": term})
        qs = qs.filter(match)
    if after is not None:
        qs = qs.filter(_after(after))
    # The page's keys first, then its rows by key: walking the name order to test the match then
    # reads the index alone (it holds every field matched), not a table row per contact passed.
    keys, params = qs.order_by(*NAME_ORDER).values("id")[: limit + 1].query.sql_with_params()
    return Contact.objects.filter(_one_of_keys(keys, params)).order_by(*NAME_ORDER)


def search_contacts(*, database_id: int, term: str, after: NameCursor | None, limit: int,
                    custom: dict[str, Any] | None = None) -> ContactPage:
    """Contacts of the database whose name, phone or email contains `term` (every contact when it is
    empty; a phone number's digits when it is typed as one), in name order, `limit` at most: one
    query. `custom`: only contacts whose custom value of each named field equals the given one (the
    contacts page's filter)."""
    query = _page_query(database_id=database_id, term=term, after=after, limit=limit, custom=custom)
    contacts = list(query) if query is not None else []
    more = len(contacts) > limit
    contacts = contacts[:limit]
    last = contacts[-1] if more else None
    return ContactPage(contacts=contacts,
                       next=NameCursor(last.first_name, last.last_name, last.pk) if last is not None else None)


def search_contact_rows(*, database_id: int, term: str, after: NameCursor | None, limit: int) -> ContactRowPage:
    """`search_contacts` as plain rows of ROW_FIELDS (no model instance per contact): the API's page."""
    query = _page_query(database_id=database_id, term=term, after=after, limit=limit, custom=None)
    rows = list(query.values(*ROW_FIELDS)) if query is not None else []
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return ContactRowPage(rows=rows, next=NameCursor(last["first_name"], last["last_name"], last["id"])
                          if last is not None else None)


def contact_for_customer(*, database_id: int, phone: str, user_id: str) -> Contact | None:
    """The database's contact of a customer: by phone when there is one, else by WhatsApp user id
    (a customer who writes without sharing her phone); none when neither is known."""
    if phone:
        return Contact.objects.filter(database_id=database_id, phone=phone).first()
    if user_id:
        return Contact.objects.filter(database_id=database_id, whatsapp_user_id=user_id).first()
    return None


def contacts_for_customers(customers: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], Contact]:
    """`contact_for_customer` for many at once, in one query: (database id, phone, user id) →
    contact, keyed by phone when there is one, else by user id (as that function looks them up)."""
    query = Q()
    for database_id, phone, user_id in customers:
        if phone:
            query |= Q(database_id=database_id, phone=phone)
        elif user_id:
            query |= Q(database_id=database_id, whatsapp_user_id=user_id)
    found: dict[tuple[int, str, str], Contact] = {}
    if not query:
        return found
    for contact in Contact.objects.filter(query).order_by("-pk"):  # the first one wins, as .first() does
        found[(contact.database_id, contact.phone, "")] = contact
        if contact.whatsapp_user_id:
            found[(contact.database_id, "", contact.whatsapp_user_id)] = contact
    return found


def contacts_for_export(*, database_id: int) -> Iterator[Contact]:
    """Every contact of the database by id, fetched in chunks (a server-side cursor on PostgreSQL)."""
    return Contact.objects.filter(database_id=database_id).order_by("id").iterator(chunk_size=2000)


def contact_count(*, database_id: int) -> int:
    return Contact.objects.filter(database_id=database_id).count()


def databases_with_counts(*, database_ids: list[int] | None) -> list[ContactDatabase]:
    """The databases (all when `database_ids` is None), by name, each with `contact_total`."""
    from django.db.models import Count

    qs = ContactDatabase.objects.annotate(contact_total=Count("contacts")).order_by("name")
    if database_ids is not None:
        qs = qs.filter(pk__in=database_ids)
    return list(qs)


def recent_imports(*, database_id: int, limit: int = 20) -> list[ContactImport]:
    return list(ContactImport.objects.filter(database_id=database_id).order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class ImportProgress:
    status: str
    status_label: str
    total_rows: int
    rows_done: int
    created: int
    updated: int
    skipped: int
    failed: int
    problems: int  # problem lines in the error report (a row may have several)
    rows_per_second: float
    message: str

    @property
    def percent(self) -> int:
        if self.status == ContactImport.Status.DONE:
            return 100
        return min(100, int(100 * self.rows_done / self.total_rows)) if self.total_rows else 0

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "status_label": self.status_label, "total_rows": self.total_rows,
                "rows_done": self.rows_done, "percent": self.percent, "created": self.created,
                "updated": self.updated, "skipped": self.skipped, "failed": self.failed, "problems": self.problems,
                "rows_per_second": self.rows_per_second, "message": self.message}


def import_progress(*, contact_import: ContactImport) -> ImportProgress:
    """Where an import stands, read afresh (the page polls it)."""
    imp = ContactImport.objects.get(pk=contact_import.pk)
    return ImportProgress(
        status=imp.status, status_label=str(imp.get_status_display()), total_rows=imp.total_rows,
        rows_done=imp.rows_done, created=imp.created, updated=imp.updated, skipped=imp.skipped, failed=imp.failed,
        problems=ContactImportProblem.objects.filter(contact_import=imp).count(),
        rows_per_second=round(imp.rows_done / imp.run_seconds, 1) if imp.run_seconds > 0 else 0.0,
        message=imp.message)


def import_problems(*, import_id: int) -> Iterator[ContactImportProblem]:
    """The error report's lines in row order, fetched in chunks."""
    return (ContactImportProblem.objects.filter(contact_import_id=import_id).order_by("row", "id")
            .iterator(chunk_size=2000))
