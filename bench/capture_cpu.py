"""CPU time and statements per capture request, beside `GET /api/v1/me/` measured in the same run.

`bench/capture_burst.py` times 200 agents pressing Capture at once through the production stack;
on a shared machine its wall clock measures the neighbours too. This measures what one request
costs the web process (`time.process_time`, Django's test client, no HTTP) and how many SQL
statements it sends:
- lost: the conversation is already taken (199 of a burst of 200): a 409 naming the holder;
- won: a waiting conversation captured (1 of 200): audit entry, event, the answer's conversation;
- me: `GET /api/v1/me/`, the burst's baseline.
Rounds of `--requests` requests of each kind, interleaved; the best round's mean is the figure.

Data: SQLite in a throw-away file by default, or DATABASE_URL; the demo, 40 agents in Sales.

    .venv/bin/python bench/capture_cpu.py [--rounds 7] [--requests 20]
    .venv/bin/python bench/capture_cpu.py --profile lost      # cProfile of one kind, top 30
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
if not os.environ.get("DATABASE_URL"):
    os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "capture_cpu.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")
os.environ["CONVERSA_FAST_PASSWORD_HASHING"] = "1"
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from harness import emit  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from conversa.accounts.models import AgentGroup, AgentProfile  # noqa: E402
from conversa.campaigns.models import Campaign  # noqa: E402
from conversa.inbox.models import Conversation  # noqa: E402
from conversa.web.demo import load_demo  # noqa: E402
from conversa.whatsapp.models import Line  # noqa: E402

AGENTS = 40
_phones = itertools.count()


def load() -> list[Client]:
    call_command("migrate", verbosity=0)
    load_demo()
    group = AgentGroup.objects.get(name="WhatsApp agents")
    sales = Campaign.objects.get(name="Sales")
    users = User.objects.bulk_create([User(username=f"cpu{n:03d}", first_name="Cpu", last_name=str(n))
                                      for n in range(AGENTS)])
    users = list(User.objects.filter(username__startswith="cpu").order_by("username"))
    AgentProfile.objects.bulk_create([AgentProfile(user=u, group=group, status=AgentProfile.Status.READY)
                                      for u in users])
    sales.agents.add(*users)
    return [Client(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=u)[1]}") for u in users]


def waiting_conversation() -> int:
    line = Line.objects.filter(campaign__name="Sales").first()
    assert line is not None
    now = timezone.now()
    return Conversation.objects.create(line=line, campaign=line.campaign, customer_phone=f"+5491177{next(_phones):06d}",
                                       customer_profile_name="Cliente", last_message_at=now,
                                       last_inbound_at=now).pk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--profile", choices=["lost", "won", "me"])
    args = parser.parse_args()
    agents = load()
    taken = waiting_conversation()
    assert agents[0].post(f"/api/v1/conversations/{taken}/capture/").status_code == 200

    def lost(n: int) -> None:
        response = agents[1 + n % (AGENTS - 1)].post(f"/api/v1/conversations/{taken}/capture/")
        assert response.status_code == 409, response.content

    def won(n: int) -> None:
        # The conversation is created outside the timed part (see timed()).
        response = agents[n % AGENTS].post(f"/api/v1/conversations/{pending.pop()}/capture/")
        assert response.status_code == 200, response.content

    def me(n: int) -> None:
        assert agents[n % AGENTS].get("/api/v1/me/").status_code == 200

    pending: list[int] = []
    kinds = {"lost": lost, "won": won, "me": me}

    def timed(kind: str) -> float:
        if kind == "won":
            pending.extend(waiting_conversation() for _ in range(args.requests))
        started = time.process_time()
        for n in range(args.requests):
            kinds[kind](n)
        return (time.process_time() - started) / args.requests * 1000

    for kind in kinds:  # warm: whatever a process loads once
        timed(kind)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(timed, args.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        if os.environ.get("BENCH_PROFILE_OUT"):
            profile.dump_stats(os.environ["BENCH_PROFILE_OUT"])
        return
    rounds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            rounds[kind].append(timed(kind))
    statements: dict[str, int] = {}
    for kind in kinds:
        if kind == "won":
            pending.append(waiting_conversation())
        with CaptureQueriesContext(connection) as queries:
            kinds[kind](0)
        statements[kind] = len(queries.captured_queries)
    best = {kind: round(min(values), 3) for kind, values in rounds.items()}
    result: dict[str, Any] = {
        "benchmark": "capture_cpu", "database": connection.vendor, "rounds": args.rounds,
        "requests_per_round": args.requests, "cpu_ms_per_request": best, "statements_per_request": statements,
        "ratio_lost_to_me": round(best["lost"] / best["me"], 2), "ratio_won_to_me": round(best["won"] / best["me"], 2),
    }
    emit(result)


if __name__ == "__main__":
    main()
