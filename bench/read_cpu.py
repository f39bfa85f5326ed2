"""CPU time per request of every agent-facing read, beside `/healthz/` measured in the same run.

Wall clock on a shared machine measures the neighbours' load; the CPU time this process spends on
one request (`time.process_time`, Django's test client, no HTTP) does not. Each read is timed in
rounds of `--requests` requests, interleaved with rounds of `/healthz/`; the best round of each
(its mean per request) is the figure, so a neighbour taking the core mid-round does not count.

Data (SQLite in a throw-away file by default, or DATABASE_URL): the demo plus 150 new and
150 of agent1's conversations per campaign, a 200-message thread, 3,000 contacts.

    .venv/bin/python bench/read_cpu.py                    # all reads, 7 rounds of 20
    .venv/bin/python bench/read_cpu.py --only general_inbox,console_page --rounds 5
    .venv/bin/python bench/read_cpu.py --profile console_pane   # cProfile of one read, top 30

Prints one JSON document (harness.emit): per read its CPU ms per request, `/healthz/` CPU ms of
the same run, the ratio, and the response size.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
if not os.environ.get("DATABASE_URL"):
    os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "read_cpu.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")
os.environ["CONVERSA_FAST_PASSWORD_HASHING"] = "1"
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from harness import emit  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from conversa.contacts.models import Contact  # noqa: E402
from conversa.inbox.models import Conversation, Message  # noqa: E402
from conversa.web.demo import load_demo  # noqa: E402
from conversa.whatsapp.models import Line  # noqa: E402

FIRST = ["Ana", "Juan", "María", "José", "Lucía", "Pedro", "Sofía", "Diego", "Valentina", "Martín"]
LAST = ["García", "Gómez", "Pérez", "Rodríguez", "Fernández", "López", "Díaz", "Martínez", "Sosa", "Ruiz"]


def load() -> dict[str, int]:
    call_command("migrate", verbosity=0)
    load_demo()
    agent1 = User.objects.get(username="agent1")
    now = timezone.now()
    rows = []
    for line in Line.objects.filter(campaign__isnull=False).select_related("campaign"):
        for i in range(150):
            phone = f"+54911{line.pk:02d}{i:05d}"
            common = {"line": line, "campaign": line.campaign, "last_message_preview": f"hola <{i}> & más",
                      "last_inbound_at": now - timedelta(minutes=i), "unread_count": i % 4,
                      "customer_profile_name": f"Cliente {i}"}
            rows.append(Conversation(customer_phone=phone, last_message_at=now - timedelta(seconds=i), **common))
            rows.append(Conversation(customer_phone=phone[:-5] + f"9{i:04d}", status=Conversation.Status.ATTENDED,
                                     agent=agent1, attended_at=now - timedelta(minutes=i),
                                     last_message_at=now - timedelta(seconds=i + 1), **common))
    Conversation.objects.bulk_create(rows)
    thread = Conversation.objects.filter(agent=agent1).order_by("-last_message_at").first()
    assert thread is not None
    Message.objects.bulk_create(
        Message(conversation=thread, line=thread.line, direction="in" if i % 2 else "out", kind="text",
                body=f"mensaje {i} con <b>marcas</b> & texto", status="received" if i % 2 else "read",
                sender=None if i % 2 else agent1, provider_message_id=f"cpu-{i}")
        for i in range(200))
    sales = Line.objects.get(number="+15550100001").campaign
    assert sales is not None and sales.contact_database is not None
    Contact.objects.bulk_create(
        Contact(database=sales.contact_database, phone=f"+54911{i:07d}", first_name=FIRST[i % 10],
                last_name=LAST[(i // 10) % 10], email=f"cliente{i}@example.com") for i in range(3000))
    contact = Contact.objects.filter(database=sales.contact_database).first()
    assert contact is not None
    return {"thread": thread.pk, "sales": sales.pk, "contact": contact.pk}


def clients() -> dict[str, Client]:
    made: dict[str, Client] = {}
    for username in ("agent1", "agent3", "supervisor"):
        user = User.objects.get(username=username)
        _token, key = AuthToken.objects.create(user=user)  # knox: the clear key is returned once (decisions #68)
        made[username] = Client(HTTP_AUTHORIZATION=f"Token {key}")
        console = Client()
        console.force_login(user)
        made[f"console:{username}"] = console
    return made


READS: dict[str, tuple[str, Callable[[dict[str, int]], str], dict[str, str]]] = {
    "me": ("agent1", lambda f: "/api/v1/me/", {}),
    "general_inbox": ("agent1", lambda f: "/api/v1/inbox/general/", {}),
    "general_inbox_two_campaigns": ("agent3", lambda f: "/api/v1/inbox/general/", {}),
    "personal_inbox": ("agent1", lambda f: "/api/v1/inbox/personal/", {}),
    "thread_page": ("agent1", lambda f: f"/api/v1/conversations/{f['thread']}/messages/", {}),
    "contact_search": ("agent1", lambda f: f"/api/v1/campaigns/{f['sales']}/contacts/?q=garc", {}),
    "contact_search_phone": ("agent1", lambda f: f"/api/v1/campaigns/{f['sales']}/contacts/?q=1100012", {}),
    "contact_dispositions": ("agent1", lambda f: f"/api/v1/contacts/{f['contact']}/dispositions/", {}),
    "live_report": ("supervisor", lambda f: "/api/v1/reports/live/", {}),
    "console_page": ("console:agent1", lambda f: "/", {}),
    "console_lists": ("console:agent1", lambda f: "/console/lists/", {"HTTP_HX_REQUEST": "true"}),
    "console_pane": ("console:agent1", lambda f: f"/console/c/{f['thread']}/", {"HTTP_HX_REQUEST": "true"}),
    "console_thread_page": ("console:agent1", lambda f: f"/console/c/{f['thread']}/messages/",
                            {"HTTP_HX_REQUEST": "true"}),
}


def cpu_per_request(get: Callable[[], Any], requests: int) -> float:
    start = time.process_time()
    for _ in range(requests):
        get()
    return (time.process_time() - start) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated read names")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20, help="requests per round")
    parser.add_argument("--profile", default="", help="profile one read with cProfile instead")
    args = parser.parse_args()
    fixture = load()
    by_user = clients()
    health = Client()
    names = [n for n in args.only.split(",") if n] or list(READS)

    def getter(name: str) -> Callable[[], Any]:
        user, path, headers = READS[name]
        client, url = by_user[user], path(fixture)

        def get() -> Any:
            response = client.get(url, **headers)  # type: ignore[arg-type]
            assert response.status_code == 200, (name, response.status_code)
            return response
        return get

    if args.profile:
        get = getter(args.profile)
        get()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            get()
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        return

    def healthz() -> Any:
        return health.get("/healthz/")

    results: dict[str, Any] = {}
    for name in names:
        get = getter(name)
        size = len(get().content)
        healthz()
        ours, base = [], []
        for _ in range(args.rounds):
            ours.append(cpu_per_request(get, args.requests))
            base.append(cpu_per_request(healthz, args.requests))
        results[name] = {"cpu_ms": round(min(ours), 2), "healthz_cpu_ms": round(min(base), 2),
                         "ratio": round(min(ours) / min(base), 2), "bytes": size}
    emit({"benchmark": "read_cpu", "database": connection.vendor, "rounds": args.rounds,
          "requests_per_round": args.requests, "reads": results})


if __name__ == "__main__":
    main()
