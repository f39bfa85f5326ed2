"""Pages of several campaigns (issue 9, decisions #77): an agent's general inbox over two campaigns
and a supervisor's Closed tab hold every row once, in (last_message_at, id) order across the
campaigns — ties and conversations without a message time included — and on PostgreSQL each page
is one statement: the ranges' keys merged by the database and the rows read by them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversa.inbox import selectors, selectors_search
from conversa.inbox.keyset import Cursor
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import Line

BASE = timezone.now() - timedelta(days=2)


def _conversations(line: Line, times: list[Any], *, phone_prefix: str, **fields: Any) -> list[Conversation]:
    """One conversation per entry of `times` (its last_message_at: repeated values are ties, None none yet)."""
    return Conversation.objects.bulk_create([
        Conversation(line=line, campaign=line.campaign, customer_phone=f"{phone_prefix}{i:04d}",
                     last_message_at=at, **fields)
        for i, at in enumerate(times)
    ])


def _walk(read: Callable[..., selectors.Page[Any]], *, limit: int) -> tuple[list[list[int]], list[int]]:
    """Every page of `read`, following its cursor, and the statements each page sent that read conversations."""
    pages: list[list[int]] = []
    statements: list[int] = []
    cursor: Cursor | None = None
    while len(pages) < 100:
        with CaptureQueriesContext(connection) as captured:
            page = read(after=cursor, limit=limit)
        statements.append(sum('"inbox_conversation"' in q["sql"] for q in captured.captured_queries))
        pages.append([row["id"] if isinstance(row, dict) else row.pk for row in page.rows])
        if (cursor := page.cursor) is None:
            return pages, statements
    raise AssertionError("more pages than rows")


def _order(rows: list[Conversation], *, descending: bool) -> list[int]:
    """(last_message_at, id), an empty time after every other ascending and before them descending."""
    valued = sorted((c for c in rows if c.last_message_at is not None), key=lambda c: (c.last_message_at, c.pk))
    empty = sorted(c.pk for c in rows if c.last_message_at is None)
    if descending:
        return empty[::-1] + [c.pk for c in reversed(valued)]
    return [c.pk for c in valued] + empty


def test_general_inbox_over_two_campaigns_pages_in_order_one_statement_each_on_postgresql(demo):
    agent3 = get_user_model().objects.get(username="agent3")  # Sales and Support
    assert len(selectors.campaign_ids_for(agent3)) == 2
    # Ties within and across the campaigns; five without a message time, in both, so a page ends
    # among them (a cursor without a time).
    times = [BASE + timedelta(minutes=i // 3) for i in range(19)]
    waiting = (_conversations(demo["sales_line"], [*times, None, None, None], phone_prefix="+54911000")
               + _conversations(demo["support_line"], [*times[::2], None, None], phone_prefix="+54911100"))
    agent1 = get_user_model().objects.get(username="agent1")
    _conversations(demo["sales_line"], times[:4], phone_prefix="+54911200", status="attended", agent=agent1)
    _conversations(demo["support_line"], times[:4], phone_prefix="+54911300", status="closed")
    _conversations(demo["sales_line"], times[:2], phone_prefix="+54911400", agent=agent1)  # new, but hers
    expected = _order(waiting, descending=False)
    assert len(expected) == 34  # the last five without a time: the sixth page ends among them

    for read in (selectors.general_inbox_values, selectors.general_inbox):
        pages, statements = _walk(lambda **page: read(agent3, **page), limit=5)  # noqa: B023 (called here)
        assert [pk for page in pages for pk in page] == expected
        assert [len(page) for page in pages] == [5] * 6 + [4]
        if connection.vendor == "postgresql":
            assert statements == [1] * len(pages), statements


def test_a_supervisors_closed_tab_over_two_campaigns_pages_newest_first_one_statement_each_on_postgresql(demo):
    supervisor = get_user_model().objects.get(username="supervisor")
    assert len(selectors.campaign_ids_for(supervisor)) == 2
    times = [BASE + timedelta(minutes=i // 2) for i in range(14)]
    closed = (_conversations(demo["sales_line"], [*times, None, None], phone_prefix="+54911000", status="closed")
              + _conversations(demo["support_line"], [*times[1::3], None], phone_prefix="+54911100",
                               status="closed"))
    _conversations(demo["sales_line"], times[:3], phone_prefix="+54911200")  # waiting: not closed
    expected = _order(closed, descending=True)
    assert expected[:3] == sorted(c.pk for c in closed if c.last_message_at is None)[::-1]

    pages, statements = _walk(lambda **page: selectors_search.closed_conversations_values(supervisor, **page),
                              limit=2)
    assert [pk for page in pages for pk in page] == expected
    assert all(len(page) == 2 for page in pages[:-1])
    if connection.vendor == "postgresql":
        assert statements == [1] * len(pages), statements
