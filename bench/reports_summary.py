"""The 30-day reports summary in-process at 1 M messages / 100,000 conversations (issue 9).

Starts a PostgreSQL-only stack (bench/harness.py: no web or worker processes), loads the demo
and inbox_scale.py's volume (the same SQL), rolls up the reports (`rollup_reports --rebuild`),
then calls `reports.selectors.summary()` over the last 30 days `--calls` times in this process
and prints p50/p95 beside `SELECT 1` round trips of the same connection (the baseline), the number
of queries, and each query's server time (`EXPLAIN ANALYZE`, best of 3) with its plan's top node.
In-process timings leave HTTP, authentication and JSON out, so a change's effect on the report's
own work shows through the noise of a shared machine; bench/inbox_scale.py measures the endpoint.

    .venv/bin/python bench/reports_summary.py [--calls 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import inbox_scale
from harness import REPO, Stack, emit, log, percentiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    with Stack(web_processes=0, task_workers=0, name="reports-summary") as stack:
        stack.manage("load_demo")
        loaded = inbox_scale.load(stack)  # rolls up the reports too
        os.environ.update({k: v for k, v in stack.env.items() if k != "PYTHONPATH"})
        sys.path.insert(0, str(REPO / "src"))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from conversa.campaigns.models import Campaign
        from conversa.reports import selectors

        today = datetime.now(UTC).date()
        rng = selectors.parse_range(str(today - timedelta(days=30)), str(today))  # as inbox_scale's probe
        campaigns = Campaign.objects.all()
        for _ in range(3):  # warm-up: connection, plans, caches
            selectors.summary(campaigns, rng)
        calls: list[float] = []
        baseline: list[float] = []
        with connection.cursor() as cursor:
            for _ in range(args.calls):
                start = time.perf_counter()
                selectors.summary(campaigns, rng)
                calls.append(time.perf_counter() - start)
                start = time.perf_counter()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                baseline.append(time.perf_counter() - start)
        log("plans")
        with CaptureQueriesContext(connection) as ctx:
            selectors.summary(campaigns, rng)
        queries: list[dict[str, Any]] = []
        with connection.cursor() as cursor:
            for query in ctx.captured_queries:
                best = float("inf")
                top = ""
                for _ in range(3):
                    cursor.execute(f"EXPLAIN (ANALYZE, SUMMARY ON) {query['sql']}")
                    plan = [row[0] for row in cursor.fetchall()]
                    best = min(best, float(plan[-1].split()[2]))
                    top = plan[0].split("  (cost")[0]
                queries.append({"server_ms": best, "top_node": top, "sql": query["sql"][:160]})
        emit({"bench": "reports_summary", "loaded": loaded, "range": [str(rng.start), str(rng.end)],
              "summary_ms": percentiles(calls), "select_1_ms": percentiles(baseline),
              "queries": len(ctx.captured_queries), "server_ms_total": round(sum(q["server_ms"] for q in queries), 2),
              "per_query": queries, "target": "the endpoint's p95 < 200 ms (bench/inbox_scale.py)"})


if __name__ == "__main__":
    main()
