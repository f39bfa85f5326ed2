"""The inbox and thread queries are ranges of an index that serves their exact ORDER BY (issue 9):
the planner's own EXPLAIN of the selectors' SQL, with enough rows (ANALYZEd) for it to care —
no sequential scan of the table, no sort. PostgreSQL is what production runs; SQLite's
EXPLAIN QUERY PLAN is checked the same way."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversa.inbox import selectors
from conversa.inbox.models import Conversation, Message

BASE = timezone.now() - timedelta(days=30)


@pytest.fixture
def crowd(demo: dict[str, Any]) -> dict[str, Any]:
    """4,000 conversations over both campaigns and four states, 2,000 messages in one of them,
    a few hundred in others; statistics collected."""
    agents = list(get_user_model().objects.filter(username__in=["agent1", "agent2", "agent3"]).order_by("username"))
    statuses = ["new", "attended", "closed", "closed"]
    rows = []
    for i in range(4000):
        line = demo["sales_line"] if i % 3 else demo["support_line"]
        status = statuses[i % 4]
        rows.append(Conversation(line=line, campaign=line.campaign, customer_phone=f"+5491100{i:05d}", status=status,
                                 agent=None if status == "new" else agents[i % 3],
                                 last_message_at=BASE + timedelta(seconds=i * 7 % 5000)))
    conversations = Conversation.objects.bulk_create(rows, batch_size=500)
    thread = conversations[1]
    messages = [Message(conversation=thread, line=thread.line, direction="in", body=f"m{i}", status="received",
                        provider_timestamp=BASE + timedelta(seconds=i)) for i in range(2000)]
    for other in conversations[2:400]:
        messages += [Message(conversation=other, line=other.line, direction="out", body="x", status="sent")
                     for _ in range(5)]
    Message.objects.bulk_create(messages, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"thread": thread, "agent3": agents[2]}


def _ordered_selects(run: Callable[[], Any], table: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries
            if f'FROM "{table}"' in q["sql"] and "ORDER BY" in q["sql"]]


def _pg_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _pg_nodes(child)


def _assert_index_serves_order(sql: str, *, table: str, index: str, sqlite_also: str = "") -> None:
    """`index` serves the query in order. SQLite appends the rowid to every index, so an older
    index ending in the time (`sqlite_also`) serves the same order there; PostgreSQL's needs the id."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # An ordered index range (a Sort node would mean the index cannot serve the ORDER BY).
            plan = _pg_plan_at_scale(sql)
            nodes = list(_pg_nodes(plan))
            scans = [n for n in nodes if n.get("Relation Name") == table]
            assert [(n["Node Type"], n.get("Index Name")) for n in scans] in (
                [("Index Scan", index)], [("Index Only Scan", index)]), (sql, plan)
            assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort", "Seq Scan")
                        and n.get("Relation Name", table) == table], (sql, plan)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            details = [row[-1] for row in cursor.fetchall()]
            used = [d for d in details if d.startswith(f"SEARCH {table} ")]
            assert len(used) == 1 and any(f"INDEX {name} (" in used[0] for name in (index, sqlite_also) if name), \
                (sql, details)
            assert not [d for d in details if "TEMP B-TREE" in d], (sql, details)


def test_general_inbox_pages_are_ordered_ranges_of_the_partial_index(crowd):
    user = crowd["agent3"]  # both campaigns: one range per campaign
    first = selectors.general_inbox(user, limit=50)
    assert first.cursor is not None
    sqls = _ordered_selects(lambda: selectors.general_inbox(user, after=first.cursor, limit=50), "inbox_conversation")
    if connection.vendor == "postgresql":
        # One statement (decisions #77): each campaign's range after the cursor, and its range of
        # conversations without a time (they sort last), merged; then the page's rows by key.
        [sql] = sqls
        _assert_ranges_merged(sql, table="inbox_conversation", index="conv_new_by_campaign_idx", ranges=4)
        return
    assert len(sqls) == 2, sqls
    for sql in sqls:
        assert " IN (SELECT" not in sql.upper()
        _assert_index_serves_order(sql, table="inbox_conversation", index="conv_new_by_campaign_idx",
                                   sqlite_also="conv_general_inbox_idx")


def _pg_plan_at_scale(sql: str) -> dict[str, Any]:
    """PostgreSQL's plan of `sql` as at scale: at a test's few thousand rows a bitmap scan and a
    sort cost the planner next to nothing, so with those two off it shows the plan it takes there."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            raw = cursor.fetchone()[0]
        finally:
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan")
    plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


def _assert_ranges_merged(sql: str, *, table: str, index: str, ranges: int) -> None:
    """PostgreSQL: `ranges` ordered ranges of `index` merged without a sort (Merge Append), the rows
    then read by primary key; the only sort is the page's rows' (the keys' order), at the top."""
    plan = _pg_plan_at_scale(sql)
    nodes = list(_pg_nodes(plan))
    assert plan["Node Type"] == "Sort" and "Merge Append" in {n["Node Type"] for n in nodes}, plan
    assert not [n for n in nodes[1:] if n["Node Type"] in ("Sort", "Incremental Sort", "Seq Scan")], plan
    scans = sorted((n["Node Type"].replace("Index Only Scan", "Index Scan"), n.get("Index Name"))
                   for n in nodes if n.get("Relation Name") == table)
    assert scans == [("Index Scan", index)] * ranges + [("Index Scan", f"{table}_pkey")], (sql, plan)


def test_personal_inbox_pages_are_ordered_ranges_of_the_partial_index(crowd):
    user = crowd["agent3"]
    first = selectors.personal_inbox(user, limit=20)
    assert first.cursor is not None
    for page in (lambda: selectors.personal_inbox(user, limit=20),
                 lambda: selectors.personal_inbox(user, after=first.cursor, limit=20)):
        sqls = [s for s in _ordered_selects(page, "inbox_conversation") if "IS NULL" not in s]
        assert len(sqls) == 1, sqls
        _assert_index_serves_order(sqls[0], table="inbox_conversation", index="conv_open_by_agent_idx")


def test_thread_pages_are_ordered_ranges_of_the_expression_index(crowd):
    thread = crowd["thread"]
    newest = selectors.conversation_messages(thread)
    assert len(newest.rows) == 50 and newest.cursor is not None
    for page in (lambda: selectors.conversation_messages(thread),
                 lambda: selectors.conversation_messages(thread, before=newest.cursor)):
        [sql] = _ordered_selects(page, "inbox_message")
        _assert_index_serves_order(sql, table="inbox_message", index="msg_thread_order_idx")
