"""Issue 10's processing target in isolation: how fast the task workers drain a backlog of stored
webhook events (claimed in batches, woken by NOTIFY), with 1, 2 and 4 workers, beside baselines of
the same run. Prints one JSON document.

    .venv/bin/python bench/webhook_processing.py [--messages 5000] [--workers 1,2,4]

On a production-shape stack (harness.Stack: PostgreSQL, Redis, `manage.py conversa_worker`):
1. baselines: pgbench single-row INSERT+COMMIT (64 clients, 5 s); the same backlog drained by one
   worker applying one event per transaction (CONVERSA_WEBHOOK_BATCH=1: what batching buys);
2. for each worker count: the workers start and go idle, then `--messages` sandbox message events
   (20 % from new customers, the rest from customers with a conversation) are committed in one
   transaction with a NOTIFY, as the intake does; measured: messages stored per second from that
   commit to the last message, and how long after the commit the last one was stored; per message,
   the workers' and the PostgreSQL backends' CPU (/proc: comparable on a shared machine) and the
   statements run (pg_stat_statements; PostgreSQL's own foreign-key checks apart).
BENCH_PROFILE_DIR=<dir> records each phase's workers with py-spy (see PROFILE_DIR below).
The webhooks' acknowledgement is bench/ingest.py's job; here the events are inserted by SQL so the
figure is the workers' alone. Loopback only; every loop bounded in count and time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import PYTHON, Stack, emit, log
from ingest import group_cpu, postgres_cpu

EXISTING_CUSTOMERS = 400
NEW_CUSTOMER_SHARE = 0.2
DRAIN_DEADLINE = 120.0
FK_CHECK = "%FOR KEY SHARE OF x%"  # how PostgreSQL's referential-integrity triggers query
# BENCH_PROFILE_DIR=<dir>: py-spy records every worker of every phase for BENCH_PROFILE_SECONDS
# (collapsed stacks; BENCH_PROFILE_ARGS adds py-spy options, e.g. "--idle --threads" for wall time).
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")
PROFILE_SECONDS = float(os.environ.get("BENCH_PROFILE_SECONDS", "8"))
PROFILE_ARGS = os.environ.get("BENCH_PROFILE_ARGS", "").split()


def body(message_id: str, phone: str, text: str) -> bytes:
    return json.dumps({"id": message_id, "from": phone, "name": "Ana", "text": text}).encode()


def store_backlog(stack: Stack, *, line_id: int, bodies: list[bytes]) -> float:
    """Insert the events in one transaction and announce them; the commit's wall-clock time."""
    with stack.connect() as conn, conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO whatsapp_webhookevent (line_id, provider_kind, body, body_sha256, headers, "
            "received_at, attempts, error) VALUES (%s, 'sandbox', %s, %s, '{}', now(), 0, '')",
            [(line_id, b, hashlib.sha256(b).hexdigest()) for b in bodies])
        cursor.execute("NOTIFY conversa_webhooks")
    return time.time()


def stored(stack: Stack, tag: str) -> int:
    return int(stack.sql("SELECT count(*) FROM inbox_message WHERE provider_message_id LIKE %s", f"{tag}%")[0][0])


def worker_statements(stack: Stack) -> tuple[int, int]:
    """Statements run since the last reset (pg_stat_statements), the bench's own polling left out:
    (the workers' statements, PostgreSQL's foreign-key checks they caused)."""
    rows = stack.sql("SELECT coalesce(sum(calls) FILTER (WHERE query NOT LIKE %s), 0), "
                     "coalesce(sum(calls) FILTER (WHERE query LIKE %s), 0) FROM pg_stat_statements "
                     "WHERE query NOT LIKE %s AND query NOT LIKE %s AND query NOT LIKE %s",
                     FK_CHECK, FK_CHECK, "%provider_message_id LIKE%", "%pg_stat_statements%",
                     "%whatsapp_webhookevent (line_id, provider_kind%")
    return int(rows[0][0]), int(rows[0][1])


def profiled(stack: Stack, *, tag: str, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each worker for `seconds` (collapsed stacks in the profile directory)."""
    if not PROFILE_DIR:
        return []
    Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)
    spy = str(Path(PYTHON).parent / "py-spy")  # installed in the virtualenv (pip install py-spy)
    return [subprocess.Popen([spy, "record", "--pid", str(stack._procs[name].pid), "--format", "raw", "--rate", "200",
                              "--duration", str(int(seconds)), "--nonblocking", *PROFILE_ARGS,
                              "--output", f"{PROFILE_DIR}/{tag}{name}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in stack._workers]


def drain(stack: Stack, *, line_id: int, workers: int, messages: int, phones: list[str], tag: str,
          worker_args: tuple[str, ...] = (), distinct: bool = False) -> dict[str, Any]:
    """`messages` events (each customer once when `distinct`) drained by `workers` fresh workers;
    with the workers' and PostgreSQL's CPU per message (comparable on a busy machine, unlike rates)."""
    rng = random.Random(tag)
    prefix = f"+54918{int(hashlib.sha256(tag.encode()).hexdigest(), 16) % 1000:03d}"  # this phase's new customers
    bodies = [body(f"{tag}{n}", phones[n] if distinct else (
        f"{prefix}{n:06d}" if rng.random() < NEW_CUSTOMER_SHARE else rng.choice(phones)), f"Mensaje {n}")
        for n in range(messages)]
    stack.start_workers(workers, *worker_args)
    stack.wait_for_workers(workers)
    pids = [stack._procs[name].pid for name in stack._workers]
    stack.sql("SELECT pg_stat_statements_reset()")
    spies = profiled(stack, tag=tag, seconds=PROFILE_SECONDS)
    workers_cpu, pg_cpu = sum(group_cpu(pid) for pid in pids), postgres_cpu(stack)
    committed = store_backlog(stack, line_id=line_id, bodies=bodies)
    end = time.monotonic() + DRAIN_DEADLINE
    while stored(stack, tag) < messages and time.monotonic() < end:
        time.sleep(0.1)  # polling the workers' progress
    workers_cpu = sum(group_cpu(pid) for pid in pids) - workers_cpu
    pg_cpu = postgres_cpu(stack) - pg_cpu
    statements, fk_checks = worker_statements(stack)
    for spy in spies:
        spy.wait(PROFILE_SECONDS + 30)
    done = stored(stack, tag)
    last = stack.sql("SELECT extract(epoch FROM max(created_at)) FROM inbox_message WHERE provider_message_id LIKE %s",
                     f"{tag}%")[0][0]
    stack.stop_workers()
    stack.sql("DELETE FROM core_workerheartbeat")
    span = float(last) - committed if last is not None else None
    return {"workers": workers, "messages": messages, "stored": done,
            "processed_per_s": round(done / span, 1) if span else None,
            "drained_after_commit_s": round(span, 2) if span and done == messages else None,
            "worker_cpu_ms_per_message": round(workers_cpu * 1000 / max(1, done), 3),
            "postgres_cpu_ms_per_message": round(pg_cpu * 1000 / max(1, done), 3),
            "statements_per_message": round(statements / max(1, done), 2),
            "foreign_key_checks_per_message": round(fk_checks / max(1, done), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    result: dict[str, Any] = {"messages_per_phase": args.messages}
    with Stack(web_processes=1, task_workers=0, max_connections=100, name="processing") as stack:
        stack.manage("load_demo")
        stack.open_all_hours()
        line_id = int(stack.sql("SELECT id FROM whatsapp_line WHERE number = '+15550100001'")[0][0])
        log("pgbench baseline")
        result["baseline_pgbench_insert_commit_tps"] = round(stack.insert_tps(clients=64, seconds=5), 1)
        log("warming customers")
        phones = [f"+5491160{n:06d}" for n in range(EXISTING_CUSTOMERS)]
        drain(stack, line_id=line_id, workers=1, messages=len(phones), phones=phones, tag="warm-", distinct=True)
        log("baseline: one event per transaction, 1 worker")
        result["baseline_one_event_per_transaction"] = drain(
            stack, line_id=line_id, workers=1, messages=min(args.messages, 2000), phones=phones, tag="single-",
            worker_args=("--batch-size", "1"))
        result["processing"] = []
        for workers in (int(w) for w in args.workers.split(",")):
            log(f"processing with {workers} worker(s)")
            result["processing"].append(drain(stack, line_id=line_id, workers=workers, messages=args.messages,
                                              phones=phones, tag=f"w{workers}-"))
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
