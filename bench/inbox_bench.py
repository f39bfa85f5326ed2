"""Inbox hot paths, each beside a baseline measured in the same run (ratios are what count).

- ingest: customer messages stored through inbox.actions.inbound.receive_inbound (dedupe, conversation
  lookup, audit, event log) vs. a bare ORM insert of the same Message rows.
- general_inbox: GET /api/v1/inbox/general/ (auth, visibility, serialisation of 100 rows) with
  5,000 open conversations vs. the bare SQL count of the same rows.
- capture: POST capture (conditional UPDATE, audit, event) vs. a bare conditional UPDATE.

Runs on a throw-away SQLite file by default, or on DATABASE_URL. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
if not os.environ.get("DATABASE_URL"):
    os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")
os.environ["CONVERSA_FAST_PASSWORD_HASHING"] = "1"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from knox.models import AuthToken  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from conversa.inbox.actions import inbound  # noqa: E402
from conversa.inbox.models import Conversation, Message  # noqa: E402
from conversa.web.demo import load_demo  # noqa: E402
from conversa.whatsapp.adapters.base import InboundMessage  # noqa: E402
from conversa.whatsapp.models import Line  # noqa: E402


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def bench_ingest(line: Line, n: int) -> dict[str, Any]:
    start = time.perf_counter()
    for i in range(n):
        inbound.receive_inbound(line, InboundMessage(provider_message_id=f"bench-{i}", from_phone=f"+549115{i:07d}",
                                                      kind="text", body="hola", profile_name="Bench"))
    ours = time.perf_counter() - start
    conversation = Conversation.objects.filter(line=line).first()
    assert conversation is not None
    start = time.perf_counter()
    for i in range(n):
        Message.objects.create(conversation=conversation, line=line, direction="in", kind="text", body="hola",
                               provider_message_id=f"base-{i}", status="received")
    base = time.perf_counter() - start
    return {"messages": n, "per_second": rate(n, ours), "baseline_bare_insert_per_second": rate(n, base),
            "ratio": round(ours / base, 2)}


def bench_general_inbox(client: APIClient, rounds: int) -> dict[str, Any]:
    def timed(fn: Any) -> float:
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000

    ours = timed(lambda: client.get("/api/v1/inbox/general/"))
    base = timed(lambda: Conversation.objects.filter(status="new", agent__isnull=True).count())
    return {"open_conversations": Conversation.objects.filter(status="new").count(), "page_size": 100,
            "median_ms": round(ours, 2), "baseline_bare_count_ms": round(base, 2), "ratio": round(ours / base, 1)}


def bench_capture(client: APIClient, user_id: int, n: int) -> dict[str, Any]:
    ids = list(Conversation.objects.filter(status="new").values_list("pk", flat=True)[: 2 * n])
    start = time.perf_counter()
    for pk in ids[:n]:
        assert client.post(f"/api/v1/conversations/{pk}/capture/").status_code == 200
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for pk in ids[n:]:
        Conversation.objects.filter(pk=pk, status="new", agent__isnull=True).update(
            agent_id=user_id, status="attended", attended_at=timezone.now())
    base = time.perf_counter() - start
    return {"captures": n, "per_second": rate(n, ours), "baseline_bare_update_per_second": rate(n, base),
            "ratio": round(ours / base, 2)}


def main() -> None:
    call_command("migrate", verbosity=0)
    load_demo()
    line = Line.objects.get(number="+15550100001")
    agent1 = __import__("django.contrib.auth.models", fromlist=["User"]).User.objects.get(username="agent1")
    _token, key = AuthToken.objects.create(user=agent1)  # knox: the key is returned once
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    ingest = bench_ingest(line, int(os.environ.get("BENCH_MESSAGES", "5000")))
    inbox = bench_general_inbox(client, rounds=30)
    capture = bench_capture(client, agent1.pk, 300)
    print(json.dumps({"benchmark": "inbox", "database": connection.vendor, "ingest": ingest,
                      "general_inbox": inbox, "capture": capture}, indent=2))


if __name__ == "__main__":
    main()
