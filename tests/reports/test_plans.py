"""On PostgreSQL, with a realistic volume, the report queries read their indexes — the
conversations of a range from a covering index alone, their dispositions from the range on, a
contact's history by its contact — and not the whole tables."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversa.campaigns.models import Campaign, Disposition, DispositionOption
from conversa.contacts.models import Contact
from conversa.inbox.models import Conversation
from conversa.reports import selectors
from conversa.whatsapp.models import Line

pytestmark = pytest.mark.postgres_only
CONVERSATIONS = 20_000


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _history() -> None:
    """20,000 closed conversations over 200 days, each with a disposition; one busy contact."""
    line = Line.objects.get(number="+15550100001")
    sales = Campaign.objects.get(name="Sales")
    agent = User.objects.get(username="agent1")
    option = DispositionOption.objects.filter(campaign=sales).first()
    contact = Contact.objects.filter(database=sales.contact_database).first()
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(line=line, campaign=sales, customer_phone=f"+54911{n:08d}", agent=agent, contact=contact
                     if n % 1000 == 0 else None, status=Conversation.Status.CLOSED)
        for n in range(CONVERSATIONS))
    rows = list(Conversation.objects.filter(campaign=sales).values_list("pk", "contact_id"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inbox_conversation SET created_at = %s - (id %% 200) * interval '1 day', "
                       "attended_at = %s - (id %% 200) * interval '1 day' + interval '1 minute', "
                       "closed_at = %s - (id %% 200) * interval '1 day' + interval '9 minutes', "
                       "first_response_at = %s - (id %% 200) * interval '1 day' + interval '2 minutes'",
                       [now, now, now, now])
    Disposition.objects.bulk_create(
        Disposition(conversation_id=pk, contact_id=contact_id, campaign=sales, option=option, agent=agent)
        for pk, contact_id in rows)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE campaigns_disposition d SET created_at = c.closed_at FROM inbox_conversation c "
                       "WHERE c.id = d.conversation_id")
        cursor.execute("VACUUM ANALYZE inbox_conversation")  # as autovacuum would: the visibility map set
        cursor.execute("VACUUM ANALYZE campaigns_disposition")


def test_report_queries_read_covering_indexes(api: Any, demo: dict[str, Any]) -> None:
    _history()
    rng = selectors.parse_range(str(timezone.localdate() - timedelta(days=29)), None)
    with CaptureQueriesContext(connection) as ctx:
        result = selectors.summary(Campaign.objects.all(), rng)
    assert {s.name: s.conversations for s in result}["Sales"] == pytest.approx(CONVERSATIONS * 30 / 200, rel=0.1)
    # The conversation figures (counts, dispositions, medians) are aggregated from conv_report_idx
    # alone: two queries, neither reads the conversations' rows.
    rows = [q["sql"] for q in ctx.captured_queries
            if q["sql"].startswith('SELECT "inbox_conversation"."campaign_id" AS "campaign_id"')]
    assert len(rows) == 2
    for sql in rows:
        plan = _plan(sql)
        assert "Index Only Scan using conv_report_idx" in plan and "Seq Scan" not in plan, plan
    dispositions = [sql for sql in rows if '"campaigns_disposition"' in sql]
    assert len(dispositions) == 1
    # Only dispositions recorded since the range began (their created_at index) are joined.
    assert "campaigns_disposition_created_at" in _plan(dispositions[0]), _plan(dispositions[0])

    contact = Disposition.objects.exclude(contact=None).values_list("contact_id", flat=True).first()
    client = api("supervisor")
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/api/v1/contacts/{contact}/dispositions/")
    assert response.status_code == 200, response.content
    page = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "campaigns_disposition"."id"')]
    assert len(page) == 1
    plan = _plan(page[0])
    # Read by its contact index: a contact's few dispositions, sorted (no index needed for that).
    # (A sequential scan of the few disposition options may be chosen; of the dispositions, never.)
    assert "Index Cond: (contact_id = " in plan and not re.search(r"Seq Scan on campaigns_disposition\b", plan), plan


def test_live_counts_are_one_statement_reading_each_open_conversation_once(demo: dict[str, Any]) -> None:
    """The live report's counts are one statement: the waiting conversations (with the oldest) from
    the general inbox's partial index alone (it holds `created_at`), the attended ones in one scan
    of their partial index for both the campaigns' and the agents' figures; never the table."""
    line = Line.objects.get(number="+15550100001")
    sales = Campaign.objects.get(name="Sales")
    agents = list(User.objects.filter(username__in=["agent1", "agent2", "agent3"]))
    Conversation.objects.bulk_create(
        Conversation(line=line, campaign=sales, customer_phone=f"+54911{n:08d}",
                     status="new" if n % 50 == 0 else "attended" if n % 50 in (1, 2) else "closed",
                     agent=None if n % 50 == 0 else agents[n % 3])
        for n in range(CONVERSATIONS))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE inbox_conversation")
    with CaptureQueriesContext(connection) as ctx:
        [live, _support] = selectors.live_snapshot(Campaign.objects.order_by("name"))
    assert (live.name, live.waiting, live.attended) == ("Sales", CONVERSATIONS // 50, CONVERSATIONS * 2 // 50)
    assert sum(agent.open for agent in live.agents) == CONVERSATIONS * 2 // 50
    [counts] = [q["sql"] for q in ctx.captured_queries if 'FROM "inbox_conversation"' in q["sql"]]
    plan = _plan(counts)
    scans = re.findall(r"(\w[\w ]*Scan)(?: using (\w+))? on inbox_conversation", plan)
    assert len(scans) == 2 and ("Index Only Scan", "conv_new_by_campaign_idx") in scans, plan
    # The attended rows from their own partial index (index-only at the bench's volume), not from
    # the wider indexes of every campaign's and agent's conversations.
    assert re.search(r"(Index Only Scan using|Bitmap Index Scan on) conv_attended_idx\b", plan), plan
    assert "Seq Scan" not in plan, plan
