"""Every agent-facing read at scale (issue 9): 100,000 conversations and 1,000,000 messages.

Starts the production shape (bench/harness.py: PostgreSQL 15-style cluster, Redis, 2 uvicorn
processes, 1 task worker), loads the demo, then the volume with set-based SQL (generate_series:
100,000 contacts in Sales' database, 100,000 conversations — 2 % new, 4 % open with agents, the
rest closed with a disposition — 998,000 messages over them plus one 2,000-message thread),
ANALYZE, and times each endpoint of PROBES: `--requests` sequential requests on one keep-alive
connection, each followed by a `/healthz/` request, so the baseline is measured in the same run
and under the same conditions. Prints one JSON document: p50/p95/p99 of each probe beside the
interleaved /healthz/ figures and their ratio, the response size, and the PostgreSQL plan of the
inbox and thread queries.

    .venv/bin/python bench/inbox_scale.py [--requests 200] [--only general_inbox,thread_page]

Add a probe: one `Probe(name, user, path)` line in PROBES (`path` may use the ids in `Fixture`).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from harness import Stack, emit, log, percentiles

CONVERSATIONS = 100_000
MESSAGES = 1_000_000
BIG_THREAD = 2_000
CONTACTS = 100_000
PER_PROBE_SECONDS = 90.0  # a probe stops early past this, whatever --requests says


@dataclass(frozen=True)
class Fixture:
    """Ids the probes' paths use, read back from the loaded database."""

    sales: int
    support: int
    big_conversation: int
    earlier_cursor: str
    contact_with_history: int


@dataclass(frozen=True)
class Probe:
    name: str
    user: str  # "agent1" (API token), "supervisor" (API token) or "console:agent1" (session cookie)
    path: Callable[[Fixture], str]


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


PROBES: list[Probe] = [
    Probe("general_inbox", "agent1", lambda f: "/api/v1/inbox/general/"),
    Probe("general_inbox_two_campaigns", "agent3", lambda f: "/api/v1/inbox/general/"),
    Probe("personal_inbox", "agent1", lambda f: "/api/v1/inbox/personal/"),
    Probe("thread_page", "agent1", lambda f: f"/api/v1/conversations/{f.big_conversation}/messages/"),
    Probe("thread_earlier_page", "agent1",
          lambda f: f"/api/v1/conversations/{f.big_conversation}/messages/?before={f.earlier_cursor}"),
    Probe("contact_search", "agent1", lambda f: f"/api/v1/campaigns/{f.sales}/contacts/?q=garc"),
    Probe("contact_search_phone", "agent1", lambda f: f"/api/v1/campaigns/{f.sales}/contacts/?q=1100012"),
    Probe("contact_dispositions", "agent1", lambda f: f"/api/v1/contacts/{f.contact_with_history}/dispositions/"),
    Probe("live_report", "supervisor", lambda f: "/api/v1/reports/live/"),
    Probe("reports_summary_30_days", "supervisor",
          lambda f: f"/api/v1/reports/summary/?from={_days_ago(30)}&to={_days_ago(0)}"),
    Probe("console_page", "console:agent1", lambda f: "/"),
    Probe("console_thread_pane", "console:agent1", lambda f: f"/console/c/{f.big_conversation}/"),
]

# --------------------------------------------------------------------------- loading
_FILL = {"character varying": "''", "text": "''", "boolean": "false", "integer": "0", "bigint": "0",
         "smallint": "0", "timestamp with time zone": "now()", "jsonb": "'{}'::jsonb", "date": "current_date",
         "numeric": "0", "double precision": "0"}


def insert_select(stack: Stack, table: str, columns: dict[str, str], source: str) -> None:
    """INSERT INTO table SELECT <columns' expressions> <source>, filling any other required column
    (one another change may add) with its type's zero: the bench does not break on new columns."""
    required = stack.sql(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s AND "
        "is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'", table)
    filled = dict(columns)
    for name, data_type in required:
        if name not in filled:
            filled[name] = _FILL.get(data_type, "DEFAULT")
    names = ", ".join(f'"{n}"' for n in filled)
    stack.sql(f"INSERT INTO {table} ({names}) SELECT {', '.join(filled.values())} {source}")


def load(stack: Stack) -> dict[str, Any]:
    started = time.monotonic()
    ids = dict(stack.sql("SELECT name, id FROM campaigns_campaign WHERE name IN ('Sales', 'Support')"))
    lines = dict(stack.sql("SELECT campaign_id, id FROM whatsapp_line WHERE campaign_id IN (%s, %s)",
                           ids["Sales"], ids["Support"]))
    users = dict(stack.sql("SELECT username, id FROM auth_user"))
    sales_db = stack.sql("SELECT contact_database_id FROM campaigns_campaign WHERE id = %s", ids["Sales"])[0][0]
    sales, support = ids["Sales"], ids["Support"]
    a1, a2, a3 = users["agent1"], users["agent2"], users["agent3"]
    log("loading contacts")
    insert_select(stack, "contacts_contact", {
        "database_id": str(sales_db), "phone": "'+5411' || lpad(g::text, 8, '0')",
        "first_name": "(ARRAY['Ana','Bruno','Carla','Diego','Elena','Facundo','Gabriela','Hernán','Inés','Juan'])"
                      "[1 + g % 10]",
        "last_name": "(ARRAY['García','Pérez','López','Gómez','Díaz','Romero','Sosa','Torres','Ruiz','Flores',"
                     "'Acosta','Benítez','Medina','Herrera','Suárez','Aguirre','Giménez','Molina','Castro','Ortiz'])"
                     "[1 + (g / 10) % 20] || ' ' || g",
        "email": "'cliente' || g || '@example.com'", "custom": "'{}'::jsonb",
        "created_at": "now() - (g % 365) * interval '1 day'", "updated_at": "now()",
    }, f"FROM generate_series(1, {CONTACTS}) g")
    first_contact = stack.sql("SELECT min(id) FROM contacts_contact WHERE database_id = %s", sales_db)[0][0]
    log("loading conversations")
    status = "CASE WHEN g % 50 = 0 THEN 'new' WHEN g % 50 IN (1, 2) THEN 'attended' ELSE 'closed' END"
    in_sales = "g % 4 <> 0"
    agent = f"CASE WHEN g % 50 = 0 THEN NULL WHEN {in_sales} THEN (ARRAY[{a1},{a2},{a3}])[1 + g % 3] ELSE {a3} END"
    at = "(now() - (g % 90) * interval '1 day' - (g * 37 % 86400) * interval '1 second')"
    insert_select(stack, "inbox_conversation", {
        "line_id": f"CASE WHEN {in_sales} THEN {lines[sales]} ELSE {lines[support]} END",
        "campaign_id": f"CASE WHEN {in_sales} THEN {sales} ELSE {support} END",
        "customer_phone": "'+549' || lpad(g::text, 10, '0')", "customer_profile_name": "'Cliente ' || g",
        "contact_id": f"CASE WHEN {in_sales} THEN {first_contact} + g % 20000 END",
        "agent_id": agent, "status": status, "is_outbound": "false",
        "created_at": f"{at} - interval '1 hour'",
        "attended_at": f"CASE WHEN g % 50 <> 0 THEN {at} - interval '50 minutes' END",
        "closed_at": f"CASE WHEN g % 50 > 2 THEN {at} + interval '5 minutes' END",
        "closed_by_system": "false", "last_inbound_at": at, "last_message_at": at,
        "first_response_at": f"CASE WHEN g % 50 <> 0 THEN {at} - interval '45 minutes' END",
        "last_message_preview": "'Mensaje ' || g", "unread_count": "CASE WHEN g % 50 IN (1, 2) THEN g % 3 ELSE 0 END",
    }, f"FROM generate_series(1, {CONVERSATIONS}) g")
    first_conversation = stack.sql("SELECT min(id) FROM inbox_conversation")[0][0]
    big = stack.sql("SELECT id FROM inbox_conversation WHERE agent_id = %s AND status = 'attended' ORDER BY id "
                    "LIMIT 1", a1)[0][0]
    log("loading messages")
    spread = MESSAGES - BIG_THREAD
    per_conversation = spread // CONVERSATIONS
    insert_select(stack, "inbox_message", {
        "conversation_id": "c.id", "line_id": "c.line_id",
        "direction": "CASE WHEN m.n % 2 = 0 THEN 'in' ELSE 'out' END", "kind": "'text'",
        "body": "'Mensaje número ' || m.n", "payload": "'{}'::jsonb", "media": "''", "media_mime": "''",
        "media_filename": "''", "media_provider_id": "''",
        "status": "CASE WHEN m.n % 2 = 0 THEN 'received' ELSE 'delivered' END", "error_code": "''",
        "error_title": "''", "send_attempts": "CASE WHEN m.n % 2 = 0 THEN 0 ELSE 1 END",
        "created_at": f"c.last_message_at - ({per_conversation - 1} - m.n / {CONVERSATIONS}) * interval '3 minutes'",
        "provider_timestamp": f"CASE WHEN m.n % 2 = 0 THEN c.last_message_at - ({per_conversation - 1} - m.n / "
                              f"{CONVERSATIONS}) * interval '3 minutes' END",
    }, f"FROM generate_series(0, {spread - 1}) m(n) JOIN inbox_conversation c ON c.id = {first_conversation} + "
       f"m.n % {CONVERSATIONS}")
    insert_select(stack, "inbox_message", {
        "conversation_id": "c.id", "line_id": "c.line_id",
        "direction": "CASE WHEN m.n % 2 = 0 THEN 'in' ELSE 'out' END", "kind": "'text'",
        "body": "'Mensaje largo ' || m.n", "payload": "'{}'::jsonb", "media": "''", "media_mime": "''",
        "media_filename": "''", "media_provider_id": "''",
        "status": "CASE WHEN m.n % 2 = 0 THEN 'received' ELSE 'read' END", "error_code": "''", "error_title": "''",
        "send_attempts": "0", "sender_id": f"CASE WHEN m.n % 2 = 1 THEN {a1} END",
        "created_at": f"c.last_message_at - ({BIG_THREAD - 1} - m.n) * interval '20 seconds'",
        "provider_timestamp": f"CASE WHEN m.n % 2 = 0 THEN c.last_message_at - ({BIG_THREAD - 1} - m.n) * "
                              "interval '20 seconds' END",
    }, f"FROM generate_series(0, {BIG_THREAD - 1}) m(n) JOIN inbox_conversation c ON c.id = {big}")
    log("loading dispositions")
    insert_select(stack, "campaigns_disposition", {
        "contact_id": "c.contact_id", "campaign_id": "c.campaign_id",
        "option_id": "(SELECT min(o.id) FROM campaigns_dispositionoption o WHERE o.campaign_id = c.campaign_id)",
        "sub_option": "''", "agent_id": "c.agent_id", "notes": "''", "form_answers": "'{}'::jsonb",
        "conversation_id": "c.id", "channel": "'whatsapp'", "created_at": "c.closed_at",
    }, "FROM inbox_conversation c WHERE c.status = 'closed'")
    log("report rollups")  # history loaded by SQL: counted as the worker's sweep would (reports.rollups)
    stack.manage("rollup_reports", "--rebuild")
    log("analyze")
    stack.sql("VACUUM ANALYZE")
    counts = {table: stack.sql(f"SELECT count(*) FROM {table}")[0][0]
              for table in ("inbox_conversation", "inbox_message", "contacts_contact", "campaigns_disposition")}
    contact = stack.sql("SELECT contact_id FROM campaigns_disposition WHERE contact_id IS NOT NULL "
                        "GROUP BY contact_id ORDER BY count(*) DESC, contact_id LIMIT 1")[0][0]
    return {"seconds": round(time.monotonic() - started, 1), "rows": counts, "sales": sales, "support": support,
            "big_conversation": big, "contact_with_history": contact}


# --------------------------------------------------------------------------- clients
def api_client(stack: Stack, username: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.url, timeout=30)
    response = client.post("/api/v1/auth/token/", json={"username": username, "password": "demo"})
    response.raise_for_status()
    client.headers["Authorization"] = f"Token {response.json()['token']}"
    return client


def console_client(stack: Stack, username: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.url, timeout=30, follow_redirects=False)
    form = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the login page"
    done = client.post("/login/", headers={"Referer": f"{stack.url}/login/"},
                       data={"username": username, "password": "demo", "csrfmiddlewaretoken": token.group(1)})
    assert done.status_code == 302, f"console login failed: {done.status_code}"
    return client


def measure(client: httpx.Client, path: str, *, requests: int) -> dict[str, Any]:
    """`requests` GETs of `path`, each followed by a /healthz/ GET on the same connection."""
    for _ in range(5):  # warm-up: connection, caches, both web processes
        client.get(path)
        client.get("/healthz/")
    ours: list[float] = []
    health: list[float] = []
    statuses: dict[int, int] = {}
    size = 0
    deadline = time.monotonic() + PER_PROBE_SECONDS
    for _ in range(requests):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        response = client.get(path)
        ours.append(time.perf_counter() - start)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        size = len(response.content)
        start = time.perf_counter()
        client.get("/healthz/")
        health.append(time.perf_counter() - start)
    figure = percentiles(ours)
    baseline = percentiles(health)
    return {"path": path, "statuses": statuses, "bytes": size, "ms": figure, "healthz_ms": baseline,
            "p95_ratio_to_healthz": round(float(figure["p95"]) / max(float(baseline["p95"]), 0.001), 2)}


def plans(stack: Stack, fixture: Fixture, users: dict[str, int]) -> dict[str, str]:
    """The plan PostgreSQL picks for each inbox/thread query shape (node types, top-down)."""
    campaigns = f"{fixture.sales}, {fixture.support}"
    agents = ", ".join(str(row[0]) for row in stack.sql("SELECT DISTINCT user_id FROM campaigns_campaign_agents"))
    shapes = {
        # The first page's rows (every column: read from the table, as the page's are).
        "general_inbox": f"SELECT * FROM inbox_conversation WHERE status = 'new' AND agent_id IS NULL AND "
                         f"campaign_id = {fixture.sales} ORDER BY last_message_at ASC NULLS LAST, id LIMIT 101",
        "personal_inbox": f"SELECT id FROM inbox_conversation WHERE agent_id = {users['agent1']} AND NOT "
                          "(status = 'closed') AND last_message_at IS NOT NULL "
                          "ORDER BY last_message_at DESC, id DESC LIMIT 101",
        "thread_page": f"SELECT id FROM inbox_message WHERE conversation_id = {fixture.big_conversation} ORDER BY "
                       "COALESCE(provider_timestamp, created_at) DESC, id DESC LIMIT 51",
        # The worker's sweep, every 10 s (inbox.sweeps): partial indexes, never the message table.
        "sweep_overdue_sends": "SELECT id FROM inbox_message WHERE status = 'queued' AND direction = 'out' AND "
                               "provider_message_id IS NULL AND next_attempt_at < now() - interval '1 minute' AND "
                               "send_claimed_at IS NULL LIMIT 500",
        "sweep_media_downloads": "SELECT id FROM inbox_message WHERE direction = 'in' AND media = '' AND NOT "
                                 "(media_provider_id = '') AND created_at < now() ORDER BY id LIMIT 500",
        "reports_conversations_30_days": "SELECT campaign_id, agent_id, status, closed_at - created_at FROM "
                                         f"inbox_conversation WHERE campaign_id IN ({fixture.sales}, "
                                         f"{fixture.support}) AND created_at >= now() - interval '30 days'",
        # The live report's counts, one statement (reports.selectors._live_counts): waiting with the
        # oldest per campaign; attended by campaign and agent (for both the campaigns and the agents).
        "live_counts": "SELECT campaign_id, 0, NULL::int, count(*), min(created_at) FROM inbox_conversation WHERE "
                       f"campaign_id IN ({campaigns}) AND status = 'new' AND agent_id IS NULL GROUP BY campaign_id "
                       "UNION ALL SELECT campaign_id, 1, agent_id, count(*), NULL FROM inbox_conversation WHERE "
                       f"(campaign_id IN ({campaigns}) OR agent_id IN ({agents})) AND status = 'attended' "
                       "GROUP BY campaign_id, agent_id",
    }
    out = {}
    for name, sql in shapes.items():
        rows = stack.sql(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}")
        out[name] = " | ".join(r[0].strip() for r in rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", default="", help="comma-separated probe names")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    with Stack(web_processes=2, task_workers=1, name="inbox-scale") as stack:
        stack.manage("load_demo")
        loaded = load(stack)
        users = dict(stack.sql("SELECT username, id FROM auth_user"))
        clients: dict[str, httpx.Client] = {}

        def client_for(user: str) -> httpx.Client:
            if user not in clients:
                kind, _sep, name = user.rpartition(":")
                clients[user] = console_client(stack, name) if kind == "console" else api_client(stack, name)
            return clients[user]

        first = client_for("agent1").get(f"/api/v1/conversations/{loaded['big_conversation']}/messages/")
        link = re.search(r"before=([^>&]+)", first.headers.get("Link", ""))
        fixture = Fixture(sales=loaded["sales"], support=loaded["support"],
                          big_conversation=loaded["big_conversation"],
                          earlier_cursor=link.group(1) if link else "",
                          contact_with_history=loaded["contact_with_history"])
        results: dict[str, Any] = {}
        for probe in PROBES:
            if only and probe.name not in only:
                continue
            log(f"probe {probe.name}")
            results[probe.name] = measure(client_for(probe.user), probe.path(fixture), requests=args.requests)
        for client in clients.values():
            client.close()
        emit({"bench": "inbox_scale", "loaded": loaded, "requests_per_probe": args.requests,
              "probes": results, "plans": plans(stack, fixture, users),
              "targets": "each p95 <= 2 x /healthz/ p95 of the same run and < 20 ms on a quiet machine; "
                         "reports summary 30 days < 200 ms"})


if __name__ == "__main__":
    main()
