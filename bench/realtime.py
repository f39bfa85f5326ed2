"""Webhook → agent socket latency with 500 sockets over 2 web processes (issue 9, decisions #40).

The production shape (bench/harness.py: 2 uvicorn processes, 1 task worker, PostgreSQL, Redis).
AGENTS agent users with the WhatsApp skill in the demo's Sales campaign (manual routing: every
new conversation is in all their general inboxes), each with an API token. Signed sandbox
webhooks (a new customer each: conversation.created + message.created to the campaign group) are
posted at RATE per second; every socket's frames are timed from the webhook POST to the
message.created frame carrying that webhook's text.

- baseline: 1 socket, RATE webhooks/s for BASELINE_SECONDS (same stack, same run);
- load: AGENTS sockets (spread over the processes by the kernel), RATE/s for LOAD_SECONDS.

Missed deliveries: after the load phase (and a drain of DRAIN seconds, longer than the log
re-read interval), every event the log addressed to the campaign must be on every socket; also
counted: duplicates. Prints one JSON document.

Usage: .venv/bin/python bench/realtime.py [AGENTS] [RATE] [LOAD_SECONDS]
BENCH_PROFILE_DIR=<dir> records the web processes with py-spy during the load phase (collapsed
stacks, one file per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from harness import Stack, emit, log, percentiles
from redis import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

AGENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
LOAD_SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
BASELINE_SECONDS = 10.0
DRAIN = 15.0  # > CONVERSA_EVENT_RECHECK_EVERY (10 s): the log re-read has had its turn
CONNECT_CONCURRENCY = 50
PREFIX = "bench-rt"
# "batch" as the console asks (what piled up comes as one array frame), or "single": one per event.
FRAMES = os.environ.get("BENCH_RT_FRAMES", "batch")
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")

MAKE_AGENTS = """
import json
from django.contrib.auth.models import User
from knox.models import AuthToken
from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign
from conversa.whatsapp.models import Line
group = AgentGroup.objects.get(name="WhatsApp agents")
sales = Campaign.objects.get(name="Sales")
User.objects.bulk_create([User(username=f"rt{n:04d}", first_name="Bench", last_name=str(n)) for n in range({count})])
users = list(User.objects.filter(username__startswith="rt").order_by("username"))
AgentProfile.objects.bulk_create([AgentProfile(user=u, group=group, status=AgentProfile.Status.READY) for u in users])
sales.agents.add(*users)
keys = [AuthToken.objects.create(user=u)[1] for u in users]  # knox: the key is returned once
line = Line.objects.get(number="+15550100001")
line.provider.webhook_secret = "{secret}"
line.provider.save(update_fields=["webhook_secret"])
print(json.dumps({"tokens": keys, "line": line.pk, "campaign": sales.pk}))
"""


@dataclass
class Socket:
    ids: list[int] = field(default_factory=list)
    arrivals: dict[int, float] = field(default_factory=dict)  # event id → arrival (wall clock, s)
    closed: bool = False


MESSAGE_IDS: dict[str, int] = {}  # webhook marker → id of its message.created event


# An event frame starts '{"id":N,"event":"...' (the server serialises them so; payloads' own "id"
# keys are never followed by an "event" key): found without a full JSON parse per frame, also
# inside the array frames the console's ?frames=batch asks for.
EVENT_START = re.compile(r'\{"id":(\d+),"event":"([a-z_.]+)"')


async def read(ws: ClientConnection, socket: Socket) -> None:
    """Record every event id and when it arrived."""
    try:
        async for raw in ws:
            now = time.time()
            text = raw if isinstance(raw, str) else raw.decode()
            starts = list(EVENT_START.finditer(text))
            for n, match in enumerate(starts):
                event_id = int(match[1])
                socket.ids.append(event_id)
                socket.arrivals.setdefault(event_id, now)
                if match[2] == "message.created":
                    end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
                    start = text.find("rt-webhook-", match.end(), end)
                    if start >= 0:
                        MESSAGE_IDS[text[start:text.index(" ", start)]] = event_id
            if not starts and '"refetch"' in text:
                log(f"refetch: {text[:200]}")
    except ConnectionClosed:
        pass
    socket.closed = True


async def open_sockets(stack: Stack, tokens: list[str]) -> list[tuple[ClientConnection, Socket, asyncio.Task[None]]]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(token: str) -> tuple[ClientConnection, Socket, asyncio.Task[None]]:
        async with gate:
            ws = await connect(f"{stack.ws_url}/ws/agent/?token={token}&frames={FRAMES}", open_timeout=60,
                               max_queue=None)
            hello = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert hello["event"] == "hello", hello
        socket = Socket()
        return ws, socket, asyncio.create_task(read(ws, socket))

    return list(await asyncio.gather(*(one(t) for t in tokens)))


async def post_webhooks(client: httpx.AsyncClient, *, line: int, secret: str, phase: str, rate: float,
                        seconds: float) -> dict[str, float]:
    """RATE signed sandbox webhooks per second, each a new customer; returns marker → POST time."""
    posted: dict[str, float] = {}
    errors: list[str] = []
    count = int(rate * seconds)
    started = time.perf_counter()

    async def one(n: int) -> None:
        marker = f"rt-webhook-{phase}-{n:05d}"
        body = json.dumps({"id": f"{marker}-id", "from": f"+5491170{'1' if phase == 'load' else '2'}{n:05d}",
                           "name": "Bench", "text": f"{marker} hola"}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        posted[marker] = time.time()
        for attempt in (1, 2):
            try:
                response = await client.post(f"/webhooks/sandbox/{line}/", content=body, headers={
                    "Content-Type": "application/json", "X-Conversa-Signature": signature})
            except httpx.TransportError as exc:
                # A kept-alive connection the server closed as we reused it; the same body again is
                # stored once (byte-identical redelivery).
                if attempt == 2:
                    errors.append(repr(exc))
                continue
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
            return

    tasks = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the sending schedule, not synchronisation
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{len(errors)} webhooks refused, e.g. {errors[:3]}")
    return posted


def latencies(posted: dict[str, float], sockets: list[Socket]) -> tuple[list[float], int]:
    """Webhook POST → its message.created frame, per socket; and how many never arrived."""
    values: list[float] = []
    absent = 0
    for marker, sent in posted.items():
        event_id = MESSAGE_IDS.get(marker)
        for socket in sockets:
            arrived = socket.arrivals.get(event_id) if event_id is not None else None
            if arrived is None:
                absent += 1
            else:
                values.append(arrived - sent)
    return values, absent


def fan_out_spread(sockets: list[Socket], ids: set[int]) -> list[float]:
    """Per event and socket: its arrival minus the event's first arrival on any socket. What handing an
    event to many sockets costs, free of the upstream delays (the worker's backlog, its
    transaction) that every socket shares."""
    values: list[float] = []
    for i in ids:
        arrivals = [socket.arrivals[i] for socket in sockets if i in socket.arrivals]
        if arrivals:
            first = min(arrivals)
            values.extend(a - first for a in arrivals)
    return values


def fan_out_latencies(stack: Stack, sockets: list[Socket], ids: set[int]) -> list[float]:
    """Event logged (its row's created_at, in the publishing transaction) → frame on the socket:
    the live fan-out alone, without the webhook's wait for the worker."""
    logged = {row[0]: float(row[1]) for row in stack.sql(
        "SELECT id, extract(epoch FROM created_at) FROM realtime_event WHERE id = ANY(%s)", sorted(ids))}
    return [socket.arrivals[i] - logged[i] for socket in sockets for i in ids
            if i in socket.arrivals and i in logged]


async def wait_processed(stack: Stack, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if stack.sql("SELECT count(*) FROM whatsapp_webhookevent WHERE processed_at IS NULL")[0][0] == 0:
            return
        await asyncio.sleep(0.2)  # polling the worker's effect
    raise RuntimeError("webhooks still unprocessed")


def campaign_events(stack: Stack, campaign: int, after: int, upto: int) -> list[int]:
    return [row[0] for row in stack.sql(
        'SELECT event_id FROM realtime_eventtarget WHERE "group" = %s AND event_id > %s AND event_id <= %s',
        f"campaign-{campaign}", after, upto)]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by the bench client, the web processes, the task worker and Redis:
    where a phase's time went (the machine has few cores, shared by all of them)."""
    procs = stack._procs  # the harness's started process groups (read only)
    snapshot = {"client": _cpu_seconds(os.getpid())}
    if "web" in procs:
        snapshot["web_processes"] = sum(_cpu_seconds(p) for p in [procs["web"].pid, *_descendants(procs["web"].pid)])
    snapshot["task_worker"] = sum(_cpu_seconds(p.pid) for name, p in procs.items() if name.startswith("worker"))
    if "redis" in procs:
        snapshot["redis"] = _cpu_seconds(procs["redis"].pid)
    return snapshot


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used on average during the phase, per part."""
    return {name: round((after[name] - before.get(name, 0.0)) / seconds, 2) for name in after}


def profiled(stack: Stack, *, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each web process (uvicorn's workers) for `seconds`, when PROFILE_DIR is set."""
    if not PROFILE_DIR:
        return []
    Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--duration",
                              str(int(seconds)), "--nonblocking", "--output", f"{PROFILE_DIR}/web-{pid}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in _descendants(stack._procs["web"].pid)]


def last_event_id(stack: Stack) -> int:
    return int(stack.sql("SELECT coalesce(max(id), 0) FROM realtime_event")[0][0])


async def run(stack: Stack) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    stack.manage("load_demo")
    stack.open_all_hours()
    output = stack.manage("shell", "-c", MAKE_AGENTS.replace("{count}", str(AGENTS)).replace("{secret}", secret))
    made = json.loads(output.strip().splitlines()[-1])
    tokens, line, campaign = made["tokens"], made["line"], made["campaign"]
    result: dict[str, Any] = {"agents": AGENTS, "web_processes": stack.web_processes, "rate_per_s": RATE,
                              "frames": FRAMES}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30,
                                 limits=httpx.Limits(max_connections=40, max_keepalive_connections=40)) as client:
        # Warm-up: both processes' first requests and the worker's first task.
        await post_webhooks(client, line=line, secret=secret, phase="warm", rate=5, seconds=1)
        await wait_processed(stack, 60)

        log("baseline: 1 socket")
        [(ws1, socket1, reader1)] = await open_sockets(stack, tokens[:1])
        base_started, cpu_before = time.perf_counter(), cpu_snapshot(stack)
        posted = await post_webhooks(client, line=line, secret=secret, phase="base", rate=RATE,
                                     seconds=BASELINE_SECONDS)
        await wait_processed(stack, 60)
        result["baseline_cores_used"] = cpu_used(cpu_before, cpu_snapshot(stack), time.perf_counter() - base_started)
        await asyncio.sleep(2)  # last frames in flight: measured, not synchronised on
        values, absent = latencies(posted, [socket1])
        result["baseline_1_socket_ms"] = {**percentiles(values), "missing": absent}
        result["baseline_1_socket_event_to_socket_ms"] = percentiles(
            fan_out_latencies(stack, [socket1], set(socket1.ids)))

        log(f"opening {AGENTS - 1} more sockets")
        started = time.perf_counter()
        others = await open_sockets(stack, tokens[1:])
        result["connect_seconds"] = round(time.perf_counter() - started, 1)
        sockets = [socket1, *(s for _, s, _ in others)]
        with Redis.from_url(stack.redis_url) as redis:
            name = f"{PREFIX}__group__campaign-{campaign}"
            result["redis_subscriptions_of_campaign_group"] = int(dict(redis.pubsub_numsub(name))[name.encode()])

        log(f"load: {AGENTS} sockets, {RATE}/s for {LOAD_SECONDS}s")
        before = last_event_id(stack)
        for socket in sockets:
            socket.ids.clear()
            socket.arrivals.clear()
        load_started = time.perf_counter()
        cpu_before = cpu_snapshot(stack)
        spies = profiled(stack, seconds=LOAD_SECONDS)
        posted = await post_webhooks(client, line=line, secret=secret, phase="load", rate=RATE, seconds=LOAD_SECONDS)
        post_seconds = time.perf_counter() - load_started
        await wait_processed(stack, 120)
        cpu_after = cpu_snapshot(stack)
        result["load_cores_used"] = cpu_used(cpu_before, cpu_after, time.perf_counter() - load_started)
        for spy in spies:
            spy.wait(timeout=60)
        upto = last_event_id(stack)
        expected = set(campaign_events(stack, campaign, before, upto))
        drain_end = time.monotonic() + DRAIN
        while time.monotonic() < drain_end and not all(expected <= set(s.ids) for s in sockets):
            await asyncio.sleep(0.2)  # waiting for in-flight and repaired frames, bounded
        values, absent = latencies(posted, sockets)
        missed = sum(len(expected - set(s.ids)) for s in sockets)
        duplicates = sum(len(s.ids) - len(set(s.ids)) for s in sockets)
        frames = sum(len(set(s.ids) & expected) for s in sockets)
        result["load_ms"] = {**percentiles(values), "missing_message_frames": absent}
        result["load_event_to_socket_ms"] = percentiles(fan_out_latencies(stack, sockets, expected))
        result["load_spread_after_first_socket_ms"] = percentiles(fan_out_spread(sockets, expected))
        result["load"] = {
            "webhooks": len(posted), "post_seconds": round(post_seconds, 1), "events": len(expected),
            "deliveries_expected": len(expected) * len(sockets), "deliveries_missed": missed,
            "duplicates": duplicates, "frames_per_second": round(frames / max(post_seconds, 1e-9)),
            "sockets_closed_by_server": sum(s.closed for s in sockets),
            # CPU time, so comparable on a busy machine (the whole phase: webhooks and catch-up too).
            "web_cpu_us_per_delivery": round(1e6 * (cpu_after["web_processes"] - cpu_before["web_processes"])
                                             / max(frames, 1), 2),
            "client_cpu_us_per_delivery": round(1e6 * (cpu_after["client"] - cpu_before["client"]) / max(frames, 1), 2),
        }
        p99, base99 = result["load_ms"].get("p99"), result["baseline_1_socket_ms"].get("p99")
        if p99 is not None and base99:
            fan99 = result["load_event_to_socket_ms"].get("p99")
            fan_base99 = result["baseline_1_socket_event_to_socket_ms"].get("p99")
            result["targets"] = {
                "p99_under_150ms": p99 < 150, "p99_within_2x_baseline": p99 <= 2 * base99,
                "ratio_p99_to_baseline": round(p99 / base99, 2), "zero_missed": missed == 0 and absent == 0,
                "fan_out_ratio_p99_to_baseline": round(fan99 / fan_base99, 2) if fan99 and fan_base99 else None,
            }
        everything = [(ws1, socket1, reader1), *others]
        for _, _, reader in everything:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws, _, _ in everything), return_exceptions=True)
    return result


def main() -> None:
    extra = {"CHANNEL_LAYER_PREFIX": PREFIX}
    with Stack(web_processes=2, task_workers=1, max_connections=100, extra_env=extra, name="realtime") as stack:
        emit(uvloop.run(run(stack)))  # the client as the servers run (the harness starts them with uvloop)


if __name__ == "__main__":
    main()
