"""The general inbox at a production mix (issue 9, decisions #70, #77): a few waiting conversations
among many closed ones. PostgreSQL's own plan — no planner setting changed — reads the first page as
an ordered range of the partial index, and a page of several campaigns in one statement that merges
the campaigns' ranges of it and reads the page's rows by key; on every database a conversation that
leaves the inbox while a page is read leaves the page without ending the pages early."""

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

from conversa.campaigns.models import Campaign
from conversa.inbox import selectors
from conversa.inbox.models import Conversation

CONVERSATIONS = 20_000


def _mix(demo: dict[str, Any]) -> None:
    """As bench/inbox_scale.py: 2 % waiting (unassigned), 4 % attended, the rest closed, in both
    campaigns; statistics collected."""
    agents = list(get_user_model().objects.filter(username__in=["agent1", "agent2", "agent3"]))
    base = timezone.now() - timedelta(days=30)
    rows = []
    for n in range(CONVERSATIONS):
        line = demo["sales_line"] if n % 4 else demo["support_line"]
        status = "new" if n % 50 == 0 else "attended" if n % 50 in (1, 2) else "closed"
        rows.append(Conversation(line=line, campaign=line.campaign, customer_phone=f"+5491100{n:06d}",
                                 status=status, agent=None if status == "new" else agents[n % 3],
                                 last_message_at=base + timedelta(seconds=n * 37 % 86400)))
    Conversation.objects.bulk_create(rows, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_conversation")


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plan(sql: str) -> list[dict[str, Any]]:
    """The nodes of the plan PostgreSQL picks for `sql`, top-down."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    return list(_nodes((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]))


def _conversation_scans(nodes: list[dict[str, Any]], *, sorted_page: bool = False) -> list[dict[str, Any]]:
    """The plan's scans of the conversation table; no sort but, with `sorted_page`, the top one of
    the page's rows (read by key: their order is the keys', not the primary key's)."""
    if sorted_page:
        assert nodes[0]["Node Type"] == "Sort", nodes[0]
        nodes = nodes[1:]
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")], nodes
    return [n for n in nodes if n.get("Relation Name") == "inbox_conversation"]


def _page_queries(run: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [q["sql"] for q in captured.captured_queries if 'FROM "inbox_conversation"' in q["sql"]]


def test_general_inbox_plans_at_a_production_mix(demo: dict[str, Any]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner (set DATABASE_URL; CI runs it there)")
    _mix(demo)
    one = get_user_model().objects.get(username="agent1")
    assert len(selectors.campaign_ids_for(one)) == 1
    [sql] = _page_queries(lambda: selectors.general_inbox_values(one))
    # Without statistics of status and agent together the planner expected ~5 rows (2 % new x
    # 2 % unassigned) and read all 300 through a bitmap, then sorted them.
    assert [(n["Node Type"], n.get("Index Name")) for n in _conversation_scans(_plan(sql))] == [
        ("Index Scan", "conv_new_by_campaign_idx")], sql

    both = get_user_model().objects.get(username="agent3")
    assert len(selectors.campaign_ids_for(both)) == 2
    page = selectors.general_inbox_values(both)
    assert len(page.rows) == 100
    assert all(row["status"] == "new" and row["agent_id"] is None for row in page.rows)
    # One statement: each campaign's first 101 keys an index-only range of the partial index, merged
    # (Merge Append: no sort) and cut at 101; then the page's rows by key — 101 primary-key lookups,
    # not every waiting row of both campaigns.
    [sql] = _page_queries(lambda: selectors.general_inbox_values(both))
    nodes = _plan(sql)
    assert sorted((n["Node Type"], n.get("Index Name")) for n in _conversation_scans(nodes, sorted_page=True)) == [
        ("Index Only Scan", "conv_new_by_campaign_idx"), ("Index Only Scan", "conv_new_by_campaign_idx"),
        ("Index Scan", "inbox_conversation_pkey")], sql
    assert "Merge Append" in {n["Node Type"] for n in nodes}, nodes


@pytest.mark.parametrize("change", ["captured", "closed", "moved to a campaign not hers"])
def test_a_conversation_leaving_while_a_page_is_read_leaves_the_page(demo: dict[str, Any], change: str) -> None:
    agent = get_user_model().objects.get(username="agent3")  # both campaigns
    assert len(selectors.campaign_ids_for(agent)) == 2
    start = timezone.now() - timedelta(hours=1)
    waiting = [Conversation.objects.create(line=line, campaign=line.campaign, customer_phone=f"+54911000{n:05d}",
                                           last_message_at=start + timedelta(minutes=n))
               for n, line in enumerate([demo["sales_line"], demo["support_line"]] * 3)]
    leaving = waiting[2]
    sales = Campaign.objects.get(name="Sales")
    elsewhere = Campaign.objects.create(name="Elsewhere", contact_database=sales.contact_database)
    other_agent = get_user_model().objects.get(username="agent1")
    changes: dict[str, dict[str, Any]] = {
        "captured": {"status": "attended", "agent": other_agent}, "closed": {"status": "closed"},
        "moved to a campaign not hers": {"campaign": elsewhere}}
    # PostgreSQL reads the page in one statement (keys and rows in one snapshot): the change comes
    # right before it. Elsewhere each range's keys are read, then the rows: it comes between them.
    one_statement = connection.vendor == "postgresql"
    statements = rows_read = 0

    def between(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements, rows_read
        if sql.startswith('SELECT "inbox_conversation"."id" AS "id"'):
            statements += 1
        if sql.startswith('SELECT "inbox_conversation"."id" AS "id", "inbox_conversation"."campaign_id"'):
            rows_read += 1  # the statement that reads the page's rows (on PostgreSQL the only one)
            Conversation.objects.filter(pk=leaving.pk).update(**changes[change])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(between):
        page = selectors.general_inbox_values(agent, limit=4)
    assert rows_read == 1
    assert statements == 1 if one_statement else statements >= 3  # elsewhere: both ranges' keys, then rows
    rest = selectors.general_inbox_values(agent, after=page.cursor, limit=4) if page.cursor is not None else None
    assert rest is not None and rest.cursor is None  # the cursor continues after it: nothing skipped
    first, second = [row["id"] for row in page.rows], [row["id"] for row in rest.rows]
    if one_statement:
        assert first == [waiting[0].pk, waiting[1].pk, waiting[3].pk, waiting[4].pk]
        assert second == [waiting[5].pk]
    else:  # left out of the page read before it left; the cursor is taken from the keys
        assert first == [waiting[0].pk, waiting[1].pk, waiting[3].pk]
        assert second == [waiting[4].pk, waiting[5].pk]
