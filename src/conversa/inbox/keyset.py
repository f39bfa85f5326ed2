"""Keyset ("seek") pagination for the inboxes and the thread.

A page continues after the sort key of the last row shown, never at an offset: an index serving
the ORDER BY reads exactly one page whatever the depth, and rows that arrive or move between two
requests cause neither gaps nor duplicates. Cursors are opaque to clients (base64 of the sort
value and the id); a cursor that does not decode is a 400 naming its parameter.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import connections
from django.db.models import F, Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from conversa.core.api import MAX_ID
from conversa.core.errors import InvalidInput

R = TypeVar("R")  # a row: a model instance, or a dict of a values() query


@dataclass(frozen=True)
class Cursor:
    """A position in an ordering by (`at`, id); `at` None sorts after every time (NULLS LAST
    ascending, NULLS FIRST descending: PostgreSQL's default and what a plain btree serves)."""

    at: datetime | None
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.at.isoformat() if self.at else None, self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str | None, *, field: str) -> Cursor | None:
    """The cursor of a query parameter: None when absent, a 400 naming `field` when malformed."""
    if value in (None, ""):
        return None
    assert value is not None
    try:
        raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        at_text, pk = json.loads(raw)
        at = parse_datetime(at_text) if at_text is not None else None
        valid = (isinstance(pk, int) and not isinstance(pk, bool) and 1 <= pk <= MAX_ID
                 and (at_text is None or (at is not None and at.tzinfo is not None)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        valid = False
    if not valid:
        raise InvalidInput(_("%(field)s is not a valid cursor: use the link the previous page gave.")
                           % {"field": field}, field=field)
    return Cursor(at=at, id=pk)


def cursor_of(obj: Any, *, field: str) -> Cursor:
    """The position of a row: a model instance or a plain row (a dict with `id`)."""
    if isinstance(obj, dict):
        return Cursor(at=obj[field], id=obj["id"])
    return Cursor(at=getattr(obj, field), id=obj.pk)


def parse_limit(value: str | None, *, default: int, maximum: int, field: str = "limit") -> int:
    """A page size: `default` when absent, a 400 naming `field` outside 1..`maximum`."""
    if value in (None, ""):
        return default
    try:
        limit = int(str(value).strip())
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise InvalidInput(_("%(field)s must be a whole number from 1 to %(maximum)d.")
                           % {"field": field, "maximum": maximum}, field=field)
    return limit


def _after(qs: QuerySet[Any, R], *, field: str, cursor: Cursor, descending: bool) -> QuerySet[Any, R]:
    """Rows strictly after `cursor` among rows whose `field` is set. The `gte`/`lte` bound lets
    the index scan start at the cursor; the OR only breaks ties within one timestamp."""
    at = cursor.at
    if descending:
        return qs.filter(**{f"{field}__lte": at}).filter(Q(**{f"{field}__lt": at}) | Q(id__lt=cursor.id))
    return qs.filter(**{f"{field}__gte": at}).filter(Q(**{f"{field}__gt": at}) | Q(id__gt=cursor.id))


def seek(qs: QuerySet[Any, R], *, field: str, cursor: Cursor | None, limit: int, descending: bool,
         nullable: bool = True) -> list[R]:
    """Up to `limit` rows of `qs` after `cursor` in (field, id) order (both ascending or both
    descending). Rows whose `field` is empty come last ascending / first descending, fetched
    separately so that each query is one ordered range of the index."""
    sign = "-" if descending else ""
    if not nullable:
        qs = qs.order_by(f"{sign}{field}", f"{sign}id")
        return list((qs if cursor is None else _after(qs, field=field, cursor=cursor, descending=descending))[:limit])
    if cursor is None and connections[qs.db].vendor == "postgresql":
        # PostgreSQL sorts NULLs last ascending and first descending, as the segments below do, and
        # its btree serves exactly that order either way: one query for the first page.
        at = F(field).desc(nulls_first=True) if descending else F(field).asc(nulls_last=True)
        return list(qs.order_by(at, f"{sign}id")[:limit])
    valued = qs.filter(**{f"{field}__isnull": False}).order_by(f"{sign}{field}", f"{sign}id")
    empty = qs.filter(**{f"{field}__isnull": True}).order_by(f"{sign}id")
    segments: list[QuerySet[Any, R]]
    if cursor is None:
        segments = [empty, valued] if descending else [valued, empty]
    elif cursor.at is None:
        empty = empty.filter(id__lt=cursor.id) if descending else empty.filter(id__gt=cursor.id)
        segments = [empty, valued] if descending else [empty]
    else:
        segments = [_after(valued, field=field, cursor=cursor, descending=descending)]
        if not descending:
            segments.append(empty)
    rows: list[R] = []
    for segment in segments:
        rows += list(segment[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def ranges(qs: QuerySet[Any, R], *, field: str, cursor: Cursor | None, descending: bool) -> list[QuerySet[Any, R]]:
    """The rows of `qs` after `cursor` as index ranges in `Cursor`'s order, each ordered by (field,
    id) as PostgreSQL orders by default (NULLs last ascending, first descending), for `merged_keys`.
    After a cursor the empty `field`s are a range of their own: no index range holds both."""
    sign = "-" if descending else ""
    order = (f"{sign}{field}", f"{sign}id")
    if cursor is None:
        return [qs.order_by(*order)]
    empty = qs.filter(**{f"{field}__isnull": True})
    if cursor.at is None:
        empty = empty.filter(id__lt=cursor.id) if descending else empty.filter(id__gt=cursor.id)
        valued = qs.filter(**{f"{field}__isnull": False})
        return [empty.order_by(*order), valued.order_by(*order)] if descending else [empty.order_by(*order)]
    after = _after(qs, field=field, cursor=cursor, descending=descending).order_by(*order)
    return [after] if descending else [after, empty.order_by(*order)]


def merged_keys(sources: list[QuerySet[Any, Any]], *, field: str, limit: int,
                descending: bool) -> tuple[str, list[Any]]:
    """A SELECT (PostgreSQL; SQL and parameters) of the ids of the first `limit` rows of several
    ordered `ranges`, in (field, id) order: each range's first `limit` keys, UNION ALL, cut after
    the merge. PostgreSQL merges the ordered ranges (Merge Append) and stops reading each one once
    the page is full; the keys only, so a range is an index-only scan."""
    parts: list[str] = []
    params: list[Any] = []
    for qs in sources:
        sql, part_params = qs.values("id", field)[:limit].query.sql_with_params()
        parts.append(f"({sql})")
        params += part_params
    column = connections[sources[0].db].ops.quote_name(field)  # values() names its column after the field
    direction = "DESC" if descending else "ASC"
    return (f'SELECT "id" FROM ({" UNION ALL ".join(parts)}) AS "ranges" '  # noqa: S608 (compiled SQL, values as parameters)
            f'ORDER BY {column} {direction}, "id" {direction} LIMIT {int(limit)}', params)


def merge(pages: Iterable[list[R]], *, field: str, limit: int, descending: bool) -> list[R]:
    """The first `limit` rows of several pages each sorted by (field, id): the general inbox reads
    one ordered index range per campaign and merges them here. Rows: model instances or dicts."""
    pages = list(pages)
    if len(pages) == 1:
        return pages[0][:limit]

    def key(row: Any) -> tuple[bool, Any, int]:
        if isinstance(row, dict):
            at, pk = row[field], row["id"]
        else:
            at, pk = getattr(row, field), row.pk
        return (at is None, at or datetime.min, pk)

    merged = heapq.merge(*pages, key=key, reverse=descending)
    return [row for _index, row in zip(range(limit), merged, strict=False)]
