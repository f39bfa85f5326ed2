"""The general inbox at a production mix (issue 9, decisions #70): a few waiting conversations among
many closed ones. PostgreSQL's own plan — no planner setting changed — reads the first page as an
ordered range of the partial index, and a page of several campaigns reads its rows by key; on every
database a conversation that leaves the inbox between the keys and the rows leaves the page."""

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


def _conversation_scans(sql: str) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = list(_nodes(plan))
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")], plan
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
    assert [(n["Node Type"], n.get("Index Name")) for n in _conversation_scans(sql)] == [
        ("Index Scan", "conv_new_by_campaign_idx")], sql

    both = get_user_model().objects.get(username="agent3")
    assert len(selectors.campaign_ids_for(both)) == 2
    page = selectors.general_inbox_values(both)
    assert len(page.rows) == 100
    assert all(row["status"] == "new" and row["agent_id"] is None for row in page.rows)
    *keys, rows = _page_queries(lambda: selectors.general_inbox_values(both))
    for key_sql in keys:
        assert [n["Node Type"] for n in _conversation_scans(key_sql)] == ["Index Only Scan"], key_sql
    # The page's rows by key: 100 primary-key lookups, not every waiting row of both campaigns.
    assert [(n["Node Type"], n.get("Index Name")) for n in _conversation_scans(rows)] == [
        ("Index Scan", "inbox_conversation_pkey")], rows


@pytest.mark.parametrize("change", ["captured", "closed", "moved to a campaign not hers"])
def test_a_conversation_leaving_between_keys_and_rows_leaves_the_page(demo: dict[str, Any], change: str) -> None:
    agent = get_user_model().objects.get(username="agent3")  # both campaigns: keys first, then rows
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
    keys_read = rows_read = 0

    def between(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal keys_read, rows_read
        if sql.startswith('SELECT "inbox_conversation"."id" AS "id", "inbox_conversation"."last_message_at"'):
            keys_read += 1
        elif sql.startswith('SELECT "inbox_conversation"."id" AS "id", "inbox_conversation"."campaign_id"'):
            rows_read += 1  # both ranges' keys are read: another agent acts before the rows are
            Conversation.objects.filter(pk=leaving.pk).update(**changes[change])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(between):
        page = selectors.general_inbox_values(agent, limit=4)
    assert keys_read >= 2 and rows_read == 1
    # Left out of this page, and the cursor (taken from the keys) continues after it: nothing skipped.
    assert [row["id"] for row in page.rows] == [waiting[0].pk, waiting[1].pk, waiting[3].pk]
    assert page.cursor is not None
    rest = selectors.general_inbox_values(agent, after=page.cursor, limit=4)
    assert [row["id"] for row in rest.rows] == [waiting[4].pk, waiting[5].pk] and rest.cursor is None
