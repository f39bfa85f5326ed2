"""Issue 10's Monday-morning burst: webhook acknowledgements, messages fully processed, and webhook →
agent socket latency, each beside a baseline of the same run. Prints one JSON document.

    .venv/bin/python bench/ingest.py [--seconds 10] [--messages 10000] [--workers 1,2,4]

Phases, on a production-shape stack (harness.Stack: 2 uvicorn processes, PostgreSQL, Redis):
1. baselines: pgbench single-row INSERT+COMMIT at 64 clients; a bare ASGI app (answers every POST
   200 without looking at it) under the same wrk load as the webhooks;
2. acknowledgements: wrk at concurrency 64 posting pre-generated unique bodies (signed Meta text
   messages; sandbox messages), no task worker running: acks/s, p50/p99, errors, web and
   PostgreSQL CPU per ack, and acks/pgbench against pgbench measured right before and right after
   the phase (`acks_per_pgbench_tps`: to their mean; also to each, and to the run start's);
3. processing: `--messages` sandbox messages (20 % from new customers, the rest from customers who
   already have a conversation) posted at full speed with 1, 2, 4 task workers: messages stored per
   second from first ack to last message, and the drain time after the last ack;
4. latency: an agent's websocket (/ws/agent/) while customers write 100 messages/s: webhook POST →
   message.created frame p50/p99, with 2 task workers;
5. paced (only with `--phases paced`): `--paced-rate` webhooks/s (1,000, then 1,250: processed per
   second cannot exceed what arrives, so the second rate shows the headroom) for `--paced-seconds`
   (30) over keep-alive connections, with 2 task workers: processed per second over the inflow, the
   drain after the last ack, CPU per message of workers, web, PostgreSQL and this client, and how
   busy the machine's CPUs were (the processing phase posts as fast as it is answered instead).
Loopback only; every loop bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from harness import PYTHON, Stack, emit, free_port, log, percentiles
from websockets.asyncio.client import connect

CONCURRENCY = 64
WRK_THREADS = 2
META_APP_SECRET = "bench-meta-app-secret"
META_PHONE_NUMBER_ID = "1099887766554"
EXISTING_CUSTOMERS = 400
NEW_CUSTOMER_SHARE = 0.2
DRAIN_DEADLINE = 90.0  # seconds a processing phase may take after its last ack
LATENCY_RATE = 100  # messages per second
LATENCY_SECONDS = 10
PACED_CONNECTIONS = 32  # the paced phase's keep-alive connections

# wrk cycles through this thread's pre-generated bodies (file <prefix><thread id>: "<signature>\t<body>"
# per line); with a stop count it stops after that many answers (a fixed number of messages).
WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local bodies, sigs, n, i, answered, stop_after = {}, {}, 0, 0, 0, 0
local path, header
function init(args)
  path, header, stop_after = args[1], args[2], tonumber(args[4])
  for line in io.lines(args[3] .. id) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    sigs[n] = line:sub(1, tab - 1)
    bodies[n] = line:sub(tab + 1)
  end
  if stop_after > 0 then stop_after = n end
end
function request()
  i = i % n + 1
  local headers = {["Content-Type"] = "application/json"}
  if header ~= "" then headers[header] = sigs[i] end
  return wrk.format("POST", path, headers, bodies[i])
end
function response(status, headers, body)
  answered = answered + 1
  if stop_after > 0 and answered >= stop_after then wrk.thread:stop() end
end
"""

BARE_APP = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status": "stored", "event": 1}'})
'''


# --------------------------------------------------------------------------- load generation
def meta_body(n: int, *, tag: str) -> bytes:
    """A Meta text-message callback (compact, as Meta sends it), unique per n."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550100090", "phone_number_id": META_PHONE_NUMBER_ID},
                  "contacts": [{"profile": {"name": "Ana"}, "wa_id": f"54911{n % 100000:08d}"}],
                  "messages": [{"from": f"54911{n % 100000:08d}", "id": f"wamid.{tag}-{n}",
                                "timestamp": str(1_700_000_000 + n), "type": "text",
                                "text": {"body": f"Hola, mensaje {n}"}}]},
        "field": "messages"}]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def meta_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(META_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def sandbox_body(message_id: str, phone: str, text: str) -> bytes:
    return json.dumps({"id": message_id, "from": phone, "name": "Ana", "text": text},
                      separators=(",", ":")).encode()


def write_bodies(prefix: Path, lines: list[tuple[str, bytes]]) -> None:
    """Split across the wrk threads' files (thread t reads <prefix><t>)."""
    for thread in range(WRK_THREADS):
        with open(f"{prefix}{thread}", "wb") as out:
            for signature, body in lines[thread::WRK_THREADS]:
                out.write(signature.encode() + b"\t" + body + b"\n")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * _UNITS[unit], 2)


def wrk(stack: Stack, *, url: str, prefix: Path, header: str, seconds: int,
        until: Any = None) -> dict[str, Any]:
    """One wrk run: requests/s, p50/p99 latency (ms), errors (non-2xx answers and socket errors).
    With `until` (a callable), each thread stops after one pass over its bodies and the run is
    interrupted as soon as until() is true (wrk itself would wait out its duration)."""
    script = stack.dir / "bodies.lua"
    script.write_text(WRK_SCRIPT)
    path = "/" + url.split("/", 3)[3]
    argv = ["wrk", "-t", str(WRK_THREADS), "-c", str(CONCURRENCY), "-d", f"{seconds}s", "--latency",
            "--timeout", "10s", "-s", str(script), url, "--", path, header, str(prefix), "1" if until else "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if until is not None:
        deadline = time.monotonic() + seconds
        while proc.poll() is None and time.monotonic() < deadline and not until():
            time.sleep(0.1)  # polling the database for the last stored event
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # wrk prints its statistics and exits
    out, err = proc.communicate(timeout=seconds + 60)
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed:\n{out}\n{err}")
    result: dict[str, Any] = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
                              "requests": int(re.search(r"(\d+) requests in", out)[1])}  # type: ignore[index]
    for quantile in ("50", "99"):
        found = re.search(rf"^\s+{quantile}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{quantile}_ms"] = _ms(found[1]) if found else None
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return result


# --------------------------------------------------------------------------- CPU accounting
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> list[tuple[int, int, int, float]]:
    """(pid, parent pid, process group, CPU seconds) of every process."""
    stats = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()
            stats.append((int(stat.parent.name), int(fields[1]), int(fields[2]),
                          (int(fields[11]) + int(fields[12])) / CLOCK_TICKS))
    return stats


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all the machine's CPUs so far (/proc/stat): how saturated it was."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (uvicorn and its workers)."""
    return sum(cpu for _, _, group, cpu in _proc_stats() if group == pgid)


def postgres_cpu(stack: Stack) -> float:
    """CPU seconds used so far by the stack's postmaster and its live backends."""
    postmaster = int((stack.dir / "pg" / "postmaster.pid").read_text().split()[0])
    return sum(cpu for pid, parent, _, cpu in _proc_stats() if postmaster in (pid, parent))


@contextlib.contextmanager
def cpu_meter(*, pgid: int, stack: Stack, workers: bool = False) -> Any:
    """{"web_s", "postgres_s"} and, with `workers`, "workers_s" (the stack's task workers):
    CPU seconds used inside the block."""
    used: dict[str, float] = {}
    worker_groups = [stack._procs[name].pid for name in stack._workers] if workers else []
    web, postgres = group_cpu(pgid), postgres_cpu(stack)
    workers_before = sum(group_cpu(g) for g in worker_groups)
    yield used
    used["web_s"] = group_cpu(pgid) - web
    used["postgres_s"] = postgres_cpu(stack) - postgres
    if workers:
        used["workers_s"] = sum(group_cpu(g) for g in worker_groups) - workers_before


def per_request_cpu(used: dict[str, float], requests: int, *, unit: str = "request") -> dict[str, float]:
    return {f"{name[:-2]}_cpu_ms_per_{unit}": round(seconds * 1000 / max(1, requests), 3)
            for name, seconds in used.items()}


# --------------------------------------------------------------------------- phases
@contextlib.contextmanager
def bare_asgi_server(stack: Stack) -> Any:
    (stack.dir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    with (stack.dir / "bare.log").open("wb") as out:
        proc = subprocess.Popen([PYTHON, "-m", "uvicorn", "bare_app:app", "--app-dir", str(stack.dir), "--host",
                                 "127.0.0.1", "--port", str(port), "--workers", str(stack.web_processes), "--loop",
                                 "uvloop", "--http", "httptools", "--no-access-log"], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def setup_lines(stack: Stack) -> dict[str, int]:
    stack.manage("load_demo")
    stack.open_all_hours()
    stack.manage("shell", "-c", f"""
from conversa.campaigns.models import Campaign
from conversa.contacts.models import ContactDatabase
from conversa.whatsapp.models import Line, Provider
provider = Provider.objects.create(name="Meta bench", kind="meta", config={{"access_token": "x",
    "app_secret": "{META_APP_SECRET}", "business_id": "555000111"}})
Line.objects.create(name="Meta bench", number="+15550100090", provider=provider, campaign=Campaign.objects.create(
    name="Meta bench", contact_database=ContactDatabase.objects.first()),
    config={{"phone_number_id": "{META_PHONE_NUMBER_ID}", "waba_id": "102290129340398", "verify_token": "v"}})
""")
    rows = dict(stack.sql("SELECT number, id FROM whatsapp_line WHERE number IN ('+15550100001', '+15550100090')"))
    return {"sandbox": int(rows["+15550100001"]), "meta": int(rows["+15550100090"])}


def events_after(stack: Stack, event_id: int) -> int:
    return int(stack.sql("SELECT count(*) FROM whatsapp_webhookevent WHERE id > %s", event_id)[0][0])


def last_event_id(stack: Stack) -> int:
    return int(stack.sql("SELECT coalesce(max(id), 0) FROM whatsapp_webhookevent")[0][0])


def ack_phase(stack: Stack, *, kind: str, line_id: int, seconds: int, budget_per_s: int) -> dict[str, Any]:
    count = seconds * budget_per_s
    if kind == "meta":
        bodies = [meta_body(n, tag=f"ack{n}") for n in range(count)]
        lines = [(meta_signature(b), b) for b in bodies]
        header = "X-Hub-Signature-256"
    else:
        lines = [("", sandbox_body(f"sbx-ack-{n}", f"+54911{n % 100000:08d}", f"Hola {n}")) for n in range(count)]
        header = ""
    prefix = stack.dir / f"{kind}-ack-"
    write_bodies(prefix, lines)
    before = last_event_id(stack)
    with cpu_meter(pgid=stack._procs["web"].pid, stack=stack) as used:
        result = wrk(stack, url=f"{stack.url}/webhooks/{kind}/{line_id}/", prefix=prefix, header=header,
                     seconds=seconds)
    result["stored_events"] = events_after(stack, before)
    result.update(per_request_cpu(used, result["stored_events"]))
    result["replayed_duplicates"] = max(0, result["requests"] - result["errors"] - result["stored_events"])
    return result


def forget_backlog(stack: Stack) -> None:
    """Events an earlier phase left unprocessed are not what the next phase measures: closed, and
    any task rows waiting for them (older announce) dropped."""
    stack.sql("UPDATE whatsapp_webhookevent SET processed_at = now() WHERE processed_at IS NULL")
    tables = {row[0] for row in stack.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    if "django_tasks_database_dbtaskresult" in tables:
        stack.sql("DELETE FROM django_tasks_database_dbtaskresult WHERE status = 'READY'")


def messages_like(stack: Stack, pattern: str) -> int:
    return int(stack.sql("SELECT count(*) FROM inbox_message WHERE provider_message_id LIKE %s", pattern)[0][0])


def warm_customers(stack: Stack, line_id: int) -> list[str]:
    """EXISTING_CUSTOMERS customers with a conversation already (processed by one worker)."""
    phones = [f"+5491160{n:06d}" for n in range(EXISTING_CUSTOMERS)]
    stack.start_workers(1)
    stack.wait_for_workers(1)
    with httpx.Client(timeout=30) as client:
        for n, phone in enumerate(phones):
            client.post(f"{stack.url}/webhooks/sandbox/{line_id}/",
                        content=sandbox_body(f"bench-warm-{n}", phone, "Hola"),
                        headers={"content-type": "application/json"}).raise_for_status()
    deadline = time.monotonic() + DRAIN_DEADLINE
    while messages_like(stack, "bench-warm-%") < len(phones) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the workers' progress
    stack.stop_workers()
    return phones


def processing_phase(stack: Stack, *, line_id: int, workers: int, messages: int, phones: list[str]) -> dict[str, Any]:
    tag = f"bench-w{workers}-"
    rng = random.Random(workers)
    lines = [("", sandbox_body(f"{tag}{n}", f"+5491170{workers}{n:06d}" if rng.random() < NEW_CUSTOMER_SHARE
                               else rng.choice(phones), f"Mensaje {n}")) for n in range(messages)]
    prefix = stack.dir / f"process-{workers}-"
    write_bodies(prefix, lines)
    forget_backlog(stack)  # what an earlier phase left undrained is not this phase's work
    stack.start_workers(workers)
    stack.wait_for_workers(workers)
    before = last_event_id(stack)
    with cpu_meter(pgid=stack._procs["web"].pid, stack=stack, workers=True) as used:
        posted = wrk(stack, url=f"{stack.url}/webhooks/sandbox/{line_id}/", prefix=prefix, header="",
                     seconds=120, until=lambda: events_after(stack, before) >= messages)
        drained = wait_for_drain(stack, tag=tag, messages=messages, events_after_id=before)
    stack.stop_workers()
    return {"workers": workers, "messages": messages, **drained, "ack_errors": posted["errors"],
            "all_processed_within_s": DRAIN_DEADLINE if drained["processed"] < messages else None,
            **per_request_cpu(used, drained["processed"], unit="message")}


def wait_for_drain(stack: Stack, *, tag: str, messages: int, events_after_id: int) -> dict[str, Any]:
    """Once the last webhook is answered: wait (bounded) until the `messages` tagged `tag` are
    stored, then the rates from the first ack to the last message and the drain after the last ack."""
    acked_at = time.monotonic()
    while messages_like(stack, f"{tag}%") < messages and time.monotonic() - acked_at < DRAIN_DEADLINE:
        time.sleep(0.1)  # polling the workers' progress
    stored = messages_like(stack, f"{tag}%")
    (first_ack, last_ack), = stack.sql("SELECT min(received_at), max(received_at) FROM whatsapp_webhookevent "
                                       "WHERE id > %s", events_after_id)
    last_message = stack.sql("SELECT max(created_at) FROM inbox_message WHERE provider_message_id LIKE %s",
                             f"{tag}%")[0][0]
    span = (last_message - first_ack).total_seconds() if last_message and first_ack else None
    acking = (last_ack - first_ack).total_seconds() if last_ack and first_ack else None
    return {"processed": stored, "acks_per_s": round(messages / acking, 1) if acking else None,
            "processed_per_s": round(stored / span, 1) if span else None,
            "drain_after_last_ack_s": (round((last_message - last_ack).total_seconds(), 2)
                                       if stored == messages and last_ack else None)}


async def _paced_posts(*, url: str, bodies: list[bytes], rate: float, connections: int) -> dict[str, Any]:
    """Post `bodies` at `rate` per second over `connections` keep-alive HTTP/1.1 connections (body n
    is due at start + n / rate; a late connection sends at once). Hand-written HTTP: an HTTP client
    library costs more CPU per request than the server's acknowledgement on these shared cores."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    errors = 0
    late: list[float] = []
    start = time.monotonic() + 0.2

    async def connection(first: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for n in range(first, len(bodies), connections):
                due = start + n / rate
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    late.append(now - due)
                body = bodies[n]
                writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(connection(c) for c in range(connections)))
    seconds = time.monotonic() - start
    return {"posted": len(bodies), "post_errors": errors, "posting_seconds": round(seconds, 2),
            "posted_per_s": round(len(bodies) / seconds, 1), "posts_late": len(late),
            "posts_late_max_ms": round(max(late, default=0.0) * 1000, 1)}


def paced_phase(stack: Stack, *, line_id: int, rate: int, seconds: int, workers: int,
                phones: list[str]) -> dict[str, Any]:
    """Webhooks arriving at `rate` per second for `seconds` (not as fast as they are answered, as in
    the processing phase): processed per second over the inflow, and the drain after the last ack."""
    tag = f"bench-paced{rate}-"
    rng = random.Random(rate)
    bodies = [sandbox_body(f"{tag}{n}", f"+5491180{n:07d}" if rng.random() < NEW_CUSTOMER_SHARE
                           else rng.choice(phones), f"Mensaje {n}") for n in range(rate * seconds)]
    forget_backlog(stack)
    stack.start_workers(workers)
    stack.wait_for_workers(workers)
    before = last_event_id(stack)
    client_before, machine_before = time.process_time(), _machine_cpu()
    with cpu_meter(pgid=stack._procs["web"].pid, stack=stack, workers=True) as used:
        posted = asyncio.run(_paced_posts(url=f"{stack.url}/webhooks/sandbox/{line_id}/", bodies=bodies,
                                          rate=rate, connections=PACED_CONNECTIONS))
        drained = wait_for_drain(stack, tag=tag, messages=len(bodies), events_after_id=before)
        used["bench_client_s"] = time.process_time() - client_before
    busy, total = (after - before_ for after, before_ in zip(_machine_cpu(), machine_before, strict=True))
    stack.stop_workers()
    return {"workers": workers, "rate_per_s": rate, "seconds": seconds, **posted, **drained,
            **per_request_cpu(used, drained["processed"], unit="message"),
            "machine_cpu_busy_share": round(busy / total, 3) if total else None}


async def socket_latency(stack: Stack, *, line_id: int, phones: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{stack.url}/api/v1/auth/token/", data={"username": "agent1", "password": "demo"})
        answer.raise_for_status()
        token = answer.json()["token"]
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        errors = 0
        total = LATENCY_RATE * LATENCY_SECONDS
        async with connect(f"{stack.ws_url}/ws/agent/?token={token}", max_size=None) as ws:

            async def read() -> None:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("event") == "message.created":
                        body = str(frame["payload"]["message"].get("body", ""))
                        if body in sent and body not in arrived:
                            arrived[body] = time.monotonic()

            async def post(n: int) -> None:
                nonlocal errors
                text = f"lat-{n}"
                sent[text] = time.monotonic()
                response = await client.post(f"{stack.url}/webhooks/sandbox/{line_id}/",
                                             content=sandbox_body(f"bench-lat-{n}", phones[n % len(phones)], text),
                                             headers={"content-type": "application/json"})
                errors += response.status_code != 200

            reader = asyncio.create_task(read())
            start = time.monotonic()
            posts = []
            for n in range(total):
                await asyncio.sleep(max(0.0, start + n / LATENCY_RATE - time.monotonic()))
                posts.append(asyncio.create_task(post(n)))
            await asyncio.gather(*posts)
            deadline = time.monotonic() + 30
            while len(arrived) < total and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the frames still on their way
            reader.cancel()
    latencies = [arrived[text] - sent[text] for text in arrived]
    return {"rate_per_s": LATENCY_RATE, "posted": total, "post_errors": errors, "missed": total - len(arrived),
            **{f"latency_{k}": v for k, v in percentiles(latencies).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk phase (10-30)")
    parser.add_argument("--messages", type=int, default=10_000, help="messages per processing phase")
    parser.add_argument("--workers", default="1,2,4", help="task worker counts for the processing phase")
    parser.add_argument("--phases", default="acks,processing,latency", help="which phases to run")
    parser.add_argument("--ack-budget", type=int, default=20_000, help="unique bodies generated per second of phase")
    parser.add_argument("--paced-rate", default="1000,1250",
                        help="webhooks/s of the paced phase; several (comma-separated) run in turn")
    parser.add_argument("--paced-seconds", type=int, default=30, help="seconds of the paced phase (10-60)")
    args = parser.parse_args()
    seconds = max(5, min(30, args.seconds))
    phases = set(args.phases.split(","))
    result: dict[str, Any] = {"concurrency": CONCURRENCY, "seconds_per_phase": seconds, "web_processes": 2}
    with Stack(web_processes=2, task_workers=0, max_connections=100, name="ingest") as stack:
        line_ids = setup_lines(stack)
        log("pgbench baseline")
        pgbench = stack.insert_tps(clients=CONCURRENCY, seconds=seconds)
        result["baseline_pgbench_insert_commit_tps"] = round(pgbench, 1)
        log("bare ASGI baseline")
        meta_prefix = stack.dir / "bare-"
        write_bodies(meta_prefix, [(meta_signature(b), b) for b in
                                   (meta_body(n, tag="bare") for n in range(10_000))])
        with bare_asgi_server(stack) as (bare_url, bare_pgid), cpu_meter(pgid=bare_pgid, stack=stack) as used:
            bare = wrk(stack, url=f"{bare_url}/webhooks/meta/1/", prefix=meta_prefix, header="X-Hub-Signature-256",
                       seconds=seconds)
        bare.update(per_request_cpu({"web_s": used["web_s"]}, bare["requests"]))
        result["baseline_bare_asgi"] = bare
        # pgbench again right before and right after each acknowledgement phase (the phase after
        # shares the one before it): the machine's state moves within a run, and one baseline
        # taken a minute earlier moved the ratio more than the acknowledgements did. The ratio
        # is to the mean of the two; each side's is printed too, and the run start's.
        pgbench_before = stack.insert_tps(clients=CONCURRENCY, seconds=seconds) if "acks" in phases else pgbench
        for kind in ("meta", "sandbox") if "acks" in phases else ():
            log(f"{kind} acknowledgements")
            acks = ack_phase(stack, kind=kind, line_id=line_ids[kind], seconds=seconds, budget_per_s=args.ack_budget)
            log("pgbench after")
            pgbench_after = stack.insert_tps(clients=CONCURRENCY, seconds=seconds)
            around = (pgbench_before + pgbench_after) / 2
            acks.update({"pgbench_before_tps": round(pgbench_before, 1), "pgbench_after_tps": round(pgbench_after, 1),
                         "acks_per_pgbench_tps": round(acks["requests_per_s"] / around, 3),
                         "acks_per_pgbench_before": round(acks["requests_per_s"] / pgbench_before, 3),
                         "acks_per_pgbench_after": round(acks["requests_per_s"] / pgbench_after, 3),
                         "acks_per_pgbench_run_start": round(acks["requests_per_s"] / pgbench, 3)})
            acks["acks_per_bare_asgi"] = round(acks["requests_per_s"] / bare["requests_per_s"], 3)
            result[f"acks_{kind}"] = acks
            pgbench_before = pgbench_after
        if phases & {"processing", "latency", "paced"}:
            forget_backlog(stack)
            log("warming customers")
            phones = warm_customers(stack, line_ids["sandbox"])
        if "processing" in phases:
            result["processing"] = []
            for workers in (int(w) for w in args.workers.split(",")):
                log(f"processing with {workers} worker(s)")
                result["processing"].append(processing_phase(stack, line_id=line_ids["sandbox"], workers=workers,
                                                             messages=args.messages, phones=phones))
        if "paced" in phases:
            result["paced"] = []
            for rate in (int(r) for r in args.paced_rate.split(",")):
                log(f"{rate} webhooks/s for {args.paced_seconds} s (2 workers)")
                result["paced"].append(paced_phase(stack, line_id=line_ids["sandbox"], rate=rate,
                                                   seconds=max(10, min(60, args.paced_seconds)), workers=2,
                                                   phones=phones))
        if "latency" in phases:
            log("webhook → agent socket at 100 msg/s (2 workers)")
            forget_backlog(stack)
            stack.start_workers(2)
            stack.wait_for_workers(2)
            result["socket_latency"] = asyncio.run(socket_latency(stack, line_id=line_ids["sandbox"], phones=phones))
            stack.stop_workers()
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
