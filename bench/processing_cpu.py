"""CPU and statements per message of the workers' webhook processing, in-process (issue 10): what
the throughput of bench/webhook_processing.py is made of, measured in CPU time rather than wall
time, so a shared, noisy machine still gives comparable figures. Prints one JSON document.

    .venv/bin/python bench/processing_cpu.py [--messages 2000] [--batch 100]

On a throwaway PostgreSQL (harness.Stack, no web or worker processes), inside one Django process
(`manage.py shell`): EXISTING customers get an open conversation first; then for each variant the
same mix of `--messages` sandbox messages (NEW_SHARE from new customers, the rest from existing
ones) is stored as webhook events and applied with `process_webhook_events` in batches:
- baseline: one event per call (what a worker does with CONVERSA_WEBHOOK_BATCH=1);
- batches of `--batch`, every message through `receive_inbound` (the set-based handler off);
- batches of `--batch` as the workers run them (plain messages set-based, decisions #55).
Measured per message: the Django process's CPU (`time.process_time`), the PostgreSQL backend's
CPU (its /proc stat), and statements (`CaptureQueriesContext`). Loopback only; bounded counts.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness import Stack, emit, log

MEASURE = r"""
import cProfile, io, json, os, pstats, time, random
from django.db import connection
from conversa.whatsapp import services
from conversa.whatsapp.intake import store_webhook
from conversa.whatsapp.models import Line

MESSAGES, BATCH, EXISTING, NEW_SHARE, PROFILE = {messages}, {batch}, {existing}, {new_share}, {profile}
statements = [0]

def counted(execute, sql, params, many, context):
    statements[0] += 1
    return execute(sql, params, many, context)
line = Line.objects.get(number="+15550100001")
ticks = os.sysconf("SC_CLK_TCK")

def backend_cpu():
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        pid = c.fetchone()[0]
    fields = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks

def store(tag, n, phone, text):
    body = json.dumps({{"id": f"{{tag}}-{{n}}", "from": phone, "name": "Ana", "text": text}}).encode()
    return store_webhook(line, body, {{}})[0].pk

existing = [f"+5491170{{n:05d}}" for n in range(EXISTING)]
warm = [store("warm", n, phone, "Hola") for n, phone in enumerate(existing)]
for start in range(0, len(warm), BATCH):
    services.process_webhook_events(event_ids=warm[start:start + BATCH])

handlers = services._webhook_handlers()
results = {{}}
for variant, batch, bulk in (("one_event_per_call", 1, True), ("batches_one_by_one", BATCH, False),
                             ("batches_set_based", BATCH, True)):
    rng = random.Random(variant)
    ids = []
    for n in range(MESSAGES):
        phone = f"+54918{{len(results)}}{{n:06d}}" if rng.random() < NEW_SHARE else rng.choice(existing)
        ids.append(store(variant, n, phone, f"Mensaje {{n}}"))
    services.register_webhook_handlers(inbound=handlers.inbound, status=handlers.status,
                                       inbound_in_bulk=handlers.inbound_in_bulk if bulk else None)
    profiler = cProfile.Profile(time.process_time) if PROFILE and bulk and batch > 1 else None
    pg_before, cpu_before, statements[0] = backend_cpu(), time.process_time(), 0
    with connection.execute_wrapper(counted):
        if profiler:
            profiler.enable()
        for start in range(0, len(ids), batch):
            services.process_webhook_events(event_ids=ids[start:start + batch])
        if profiler:
            profiler.disable()
    cpu, pg = time.process_time() - cpu_before, backend_cpu() - pg_before
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(45)
        print(out.getvalue())
    results[variant] = {{"batch": batch, "messages": MESSAGES,
                        "worker_cpu_ms_per_message": round(cpu / MESSAGES * 1000, 3),
                        "postgres_cpu_ms_per_message": round(pg / MESSAGES * 1000, 3),
                        "statements_per_message": round(statements[0] / MESSAGES, 2)}}
print(json.dumps(results))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--existing", type=int, default=400)
    parser.add_argument("--new-share", type=float, default=0.2)
    parser.add_argument("--profile", action="store_true", help="cProfile of the set-based variant, to stderr")
    args = parser.parse_args()
    with Stack(web_processes=0, task_workers=0, name="processing-cpu") as stack:
        stack.manage("load_demo")
        stack.open_all_hours()
        log(f"measuring {args.messages} messages per variant in-process")
        code = MEASURE.format(messages=args.messages, batch=args.batch, existing=args.existing,
                              new_share=args.new_share, profile=args.profile)
        output = stack.manage("shell", "-c", code, timeout=1800)
        *profile, last = output.strip().splitlines()
        results = json.loads(last)
        if args.profile:
            print("\n".join(profile), file=sys.stderr)
    base = results["one_event_per_call"]
    emit({
        "new_customer_share": args.new_share, "existing_customers": args.existing, **results,
        "ratios_to_one_event_per_call": {
            variant: {key: round(figures[key] / base[key], 3) for key in
                      ("worker_cpu_ms_per_message", "postgres_cpu_ms_per_message", "statements_per_message")
                      if base[key]}
            for variant, figures in results.items() if variant != "one_event_per_call"},
        "target": "1,000 messages/s on 2 cores: about 2 ms of CPU per message in all (worker + PostgreSQL + web)",
    })


if __name__ == "__main__":
    main()
