"""Which index each reader of the per-message tables' columns uses, with and without the indexes
decisions #78 drops (issue 10: every index of the conversation and webhook event tables costs
every message, no conversation update being HOT). Prints one JSON document.

    .venv/bin/python bench/conversation_index_plans.py

On a throwaway PostgreSQL (harness.Stack, no web or worker processes): the demo, then
bench/inbox_scale.py's volume (100,000 conversations, 1,000,000 messages), 0.1 % of the
conversations put in a line's menu, and 300,000 processed webhook events plus 50 waiting ones;
VACUUM ANALYZE. Then, inside one Django process, each reader (selectors, sweeps, housekeeping, the
admin's and deletion's lookups) runs under CaptureQueriesContext, and each SELECT it sent is
EXPLAIN ANALYZEd twice in the same transaction: with the indexes of the checkout, and after
`DROP INDEX` of the candidates (`CANDIDATES`, skipping those the checkout no longer has) — rolled
back, so the two plans are of the same data. Loopback only.
"""

from __future__ import annotations

import json

from harness import Stack, emit, log
from inbox_scale import load

# What issue 10's sixth session dropped, and last_message_at's, which it kept (search needs it);
# those a checkout no longer has are skipped.
CANDIDATES = [
    "inbox_conversation_status_46b82373", "inbox_conversation_status_46b82373_like",
    "inbox_conversation_campaign_id_4fe6f192", "inbox_conversation_agent_id_bb5e623b",
    "inbox_conversation_last_message_at_7dad2fc1",
    "inbox_conversation_customer_phone_82ad5c6f_like", "inbox_conversation_customer_user_id_b00d7012_like",
    "whatsapp_webhookevent_line_id_d8e723b7", "whatsapp_webhookevent_received_at_f2d6b284",
]

MEASURE = r"""
import datetime, json, re
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from conversa.inbox import selectors, selectors_search
from conversa.inbox.actions import closing, expiry, menu
from conversa.inbox.models import Conversation
from conversa.reports import selectors as reports
from conversa.whatsapp import sweeps
from conversa.whatsapp.models import WebhookEvent

CANDIDATES = __CANDIDATES__
agent = User.objects.get(username="agent1")
supervisor = User.objects.get(username="supervisor")
history = (Conversation.objects.filter(contact__isnull=False, status="closed", campaign__name="Sales")
           .order_by("id").first())
rng = reports.parse_range(None, None)

READERS = {
    "general_inbox_agent": lambda: selectors.general_inbox_values(agent),
    "general_inbox_supervisor": lambda: selectors.general_inbox_values(supervisor),
    "personal_inbox": lambda: selectors.personal_inbox_values(agent),
    "closed_tab_agent": lambda: selectors_search.closed_conversations_values(agent),
    "closed_tab_supervisor": lambda: selectors_search.closed_conversations_values(supervisor),
    "search_name_supervisor": lambda: selectors_search.search_conversations(supervisor, text="Hernán"),
    "search_phone_supervisor": lambda: selectors_search.search_conversations(supervisor, text="0000012"),
    "search_text_agent": lambda: selectors_search.search_conversations(agent, text="Mensaje 77"),
    "previous_conversations": lambda: selectors_search.previous_conversations(supervisor, history),
    "live_report": lambda: reports.live_snapshot(reports.reportable_campaigns(supervisor)),
    "report_summary": lambda: reports.summary(reports.reportable_campaigns(supervisor), rng),
    "report_conversation_rows": lambda: list(reports.conversation_rows(reports.reportable_campaigns(supervisor), rng,
                                                                       agent_id=str(agent.pk))[:50]),
    "report_rows_by_phone": lambda: list(reports.conversation_rows(reports.reportable_campaigns(supervisor), rng,
                                                                   phone="0000012")[:50]),
    "sweep_menu_timeouts": lambda: menu.route_menu_timeouts(),
    "sweep_expiry": lambda: expiry.expire_unanswered(now=timezone.now() - datetime.timedelta(days=400)),
    # close_stale_conversations' candidate read (`--days 7 --status new,attended`), without its closes.
    "housekeeping_close_stale": lambda: list(Conversation.objects.filter(
        closing._idle_since(timezone.now() - datetime.timedelta(days=7)), status__in=["new", "attended"])
        .order_by("pk").values_list("pk", flat=True)),
    "capacity_count": lambda: Conversation.objects.filter(agent=agent, status="attended").count(),
    # Deleting a user, campaign or line: Django's PROTECT / CASCADE lookups; ids 0, as for one with no rows.
    "delete_check_user": lambda: Conversation.objects.filter(agent_id__in=[0]).exists(),
    "delete_check_campaign": lambda: Conversation.objects.filter(campaign_id__in=[0]).exists(),
    "delete_check_line": lambda: Conversation.objects.filter(line_id__in=[0]).exists(),
    "admin_status_filter": lambda: list(Conversation.objects.filter(status="closed").order_by("-pk")[:100]),
    "sweep_overdue_webhooks": lambda: sweeps.requeue_overdue_webhook_events(),
    "webhook_backlog": lambda: sweeps.webhook_backlog(),
    "cascade_line_webhook_events": lambda: WebhookEvent.objects.filter(line_id__in=[0]).exists(),
}

def statements(fn):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            fn()
        transaction.set_rollback(True)
    return [q["sql"] for q in captured.captured_queries
            if q["sql"].lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in q["sql"].upper()]

def explain(cursor, sql):
    cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql)
    lines = [r[0] for r in cursor.fetchall()]
    plan = "\n".join(lines)
    used = sorted(set(re.findall(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)", plan)))
    seq = sorted(set(re.findall(r"Seq Scan on (\w+)", plan)))
    ms = float(re.search(r"Execution Time: ([\d.]+)", lines[-1]).group(1))
    return {"indexes": used, "seq_scans": seq, "ms": ms}

with connection.cursor() as c:
    c.execute("SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [CANDIDATES])
    present = sorted(r[0] for r in c.fetchall())
out = {"dropped_for_after": present, "readers": {}}
for name, fn in READERS.items():
    rows, shapes = [], set()
    for sql in statements(fn):
        shape = re.sub(r"\d+", "N", sql)
        if ("inbox_conversation" not in sql and "whatsapp_webhookevent" not in sql) or shape in shapes:
            continue
        shapes.add(shape)
        with transaction.atomic(), connection.cursor() as c:
            before = min((explain(c, sql) for _ in range(3)), key=lambda e: e["ms"])
            for index in present:
                c.execute("DROP INDEX " + index)
            after = min((explain(c, sql) for _ in range(3)), key=lambda e: e["ms"])
            transaction.set_rollback(True)
        rows.append({"sql": sql[:160], "before": before, "after": after})
    out["readers"][name] = rows
print(json.dumps(out))
"""


def main() -> None:
    with Stack(web_processes=0, task_workers=0, name="index-plans") as stack:
        stack.manage("load_demo")
        loaded = load(stack)
        log("menu conversations and webhook events")
        stack.sql("UPDATE inbox_conversation SET status = 'menu', agent_id = NULL WHERE id % 1000 = 7")
        line_id = stack.sql("SELECT id FROM whatsapp_line ORDER BY id LIMIT 1")[0][0]
        stack.sql("INSERT INTO whatsapp_webhookevent (line_id, provider_kind, body, body_sha256, headers, received_at, "
                  f"processed_at, attempts, error) SELECT {line_id}, 'sandbox', '\\x7b7d'::bytea, "
                  "md5(g::text) || md5(g::text), '{}'::jsonb, now() - g * interval '1 second', "
                  "CASE WHEN g > 50 THEN now() - g * interval '1 second' END, 1, '' FROM generate_series(1, 300050) g")
        stack.sql("VACUUM ANALYZE")
        log("plans")
        code = MEASURE.replace("__CANDIDATES__", json.dumps(CANDIDATES))
        output = stack.manage("shell", "-c", code, timeout=1800)
        result = json.loads(output.strip().splitlines()[-1])
    emit({"rows": loaded["rows"], **result})


if __name__ == "__main__":
    main()
