"""200 agents capture the same conversation at once, 20 times (issue "500 agents on one box").

Production shape (bench/harness.py): 2 uvicorn processes, 1 task worker, PostgreSQL at its default
`max_connections` (100), Redis. Each burst: a customer writes (sandbox webhook) and the new
conversation waits in the Sales general inbox; then all agents POST capture at the same instant.
Printed: winners per burst (must be exactly 1), errors (anything but 200/409, transport errors
included), the burst time (first request sent → last answer), and as the same-run baseline a burst
of the same size of `GET /api/v1/me/` by the same agents.

    .venv/bin/python bench/capture_burst.py [--agents 200] [--bursts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
from harness import Stack, emit, log, percentiles

MAKE_AGENTS = """
import json
from django.contrib.auth.models import User
from knox.models import AuthToken
from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign
group = AgentGroup.objects.get(name="WhatsApp agents")
sales = Campaign.objects.get(name="Sales")
users = User.objects.bulk_create([User(username=f"bench{n:04d}", first_name="Bench", last_name=str(n))
                                  for n in range({count})])
users = list(User.objects.filter(username__startswith="bench").order_by("username"))
AgentProfile.objects.bulk_create([AgentProfile(user=u, group=group, status=AgentProfile.Status.READY)
                                  for u in users])
sales.agents.add(*users)
print(json.dumps([AuthToken.objects.create(user=u)[1] for u in users]))
"""


async def burst(client: httpx.AsyncClient, tokens: list[str], method: str, path: str) -> tuple[float, list[int | str]]:
    """Every agent sends the request at once; (seconds from the first send to the last answer, statuses)."""
    gate = asyncio.Event()

    async def one(token: str) -> int | str:
        await gate.wait()
        try:
            response = await client.request(method, path, headers={"Authorization": f"Token {token}"})
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return response.status_code

    tasks = [asyncio.create_task(one(token)) for token in tokens]
    await asyncio.sleep(0)  # let every task reach the gate
    started = time.perf_counter()
    gate.set()
    statuses = await asyncio.gather(*tasks)
    return time.perf_counter() - started, list(statuses)


async def new_conversation(client: httpx.AsyncClient, stack: Stack, *, line_id: int, n: int) -> int:
    phone = f"+5491166{n:06d}"
    payload = {"id": f"burst-{n}-{time.time_ns()}", "from": phone, "name": f"Cliente {n}", "text": "Hola"}
    response = await client.post(f"/webhooks/sandbox/{line_id}/", content=json.dumps(payload),
                                 headers={"Content-Type": "application/json"})
    response.raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = stack.sql("SELECT id FROM inbox_conversation WHERE customer_phone = %s AND status = 'new'", phone)
        if rows:
            return int(rows[0][0])
        await asyncio.sleep(0.05)  # polling another process's work: nothing to wait on
    raise RuntimeError(f"conversation of {phone} never reached the general inbox")


async def run(stack: Stack, *, agents: int, bursts: int) -> dict[str, Any]:
    stack.manage("load_demo")
    tokens: list[str] = json.loads(stack.manage("shell", "-c", MAKE_AGENTS.replace("{count}", str(agents)))
                                   .strip().splitlines()[-1])
    line_id = int(stack.sql("SELECT id FROM whatsapp_line WHERE number = '+15550100001'")[0][0])
    # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them, so a request
    # never races the server closing its connection (a client-side artifact, not a server error).
    limits = httpx.Limits(max_connections=agents + 10, max_keepalive_connections=agents + 10, keepalive_expiry=2)
    me_times: list[float] = []
    capture_times: list[float] = []
    winners: list[int] = []
    errors: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=60) as client:
        for n in range(bursts):
            conversation = await new_conversation(client, stack, line_id=line_id, n=n)
            # Warm-up (not measured): every agent's keep-alive connection open, the pools filled.
            await burst(client, tokens, "GET", "/api/v1/me/")
            seconds, statuses = await burst(client, tokens, "GET", "/api/v1/me/")
            me_times.append(seconds)
            for status in statuses:
                if status != 200:
                    errors[f"me:{status}"] = errors.get(f"me:{status}", 0) + 1
            seconds, statuses = await burst(client, tokens, "POST", f"/api/v1/conversations/{conversation}/capture/")
            capture_times.append(seconds)
            winners.append(statuses.count(200))
            for status in statuses:
                if status not in (200, 409):
                    errors[f"capture:{status}"] = errors.get(f"capture:{status}", 0) + 1
            log(f"burst {n + 1}/{bursts}: {seconds * 1000:.0f} ms, {statuses.count(200)} winner(s)")
    connections = stack.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", stack.database)[0][0]
    capture = percentiles(capture_times)
    me = percentiles(me_times)
    return {
        "agents": agents, "bursts": bursts, "postgresql_max_connections": stack.max_connections,
        "winners_per_burst": winners, "bursts_with_exactly_one_winner": winners.count(1),
        "errors": errors,
        "capture_burst_ms": capture, "baseline_me_burst_ms": me,
        "ratio_p50": round(float(capture["p50"]) / float(me["p50"]), 2),
        "ratio_max": round(float(capture["max"]) / float(me["max"]), 2),
        "postgresql_connections_after": connections,
        "target": "exactly 1 winner per burst, 0 errors, burst time <= 1.2 x the /me/ burst",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=20)
    args = parser.parse_args()
    with Stack(web_processes=2, task_workers=1, max_connections=100, name="capture") as stack:
        emit(asyncio.run(run(stack, agents=args.agents, bursts=args.bursts)))


if __name__ == "__main__":
    main()
