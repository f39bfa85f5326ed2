"""Reply latency under a webhook backlog, beside a same-run baseline (issue 8 item 4).

Measures an agent's reply from its send task's enqueue (the task row's enqueued_at) to the
provider call (the moment a fake provider HTTP server on loopback receives it), p50/p99, with
real `manage.py conversa_worker` processes:
- baseline: no backlog;
- backlog: BACKLOG (default 5,000, at most 20,000) stored webhook events with their tasks queued
  before the workers start, replies sent while the workers chew through them.

Runs on a throw-away SQLite file by default, or on DATABASE_URL (use a throw-away database: it is
migrated and filled). Prints one JSON object. Usage: python bench/reply_latency.py [BACKLOG] [WORKERS]
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
if not os.environ.get("DATABASE_URL"):
    os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789-0123456789")
os.environ["CONVERSA_FAST_PASSWORD_HASHING"] = "1"
os.environ["CONVERSA_EMBEDDED_WORKER"] = "0"
os.environ.pop("REDIS_URL", None)  # events stay in-process: only the queue is measured

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django_tasks_db.models import DBTaskResult  # noqa: E402
from knox.models import AuthToken  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from conversa.core.models import WorkerHeartbeat  # noqa: E402
from conversa.core.worker import make_worker  # noqa: E402
from conversa.inbox.models import Conversation, Message  # noqa: E402
from conversa.inbox.tasks import send_outbound_message  # noqa: E402
from conversa.web.demo import load_demo  # noqa: E402
from conversa.whatsapp.intake import store_webhook  # noqa: E402
from conversa.whatsapp.models import Line, WebhookEvent  # noqa: E402

REPLIES = 30
DEADLINE = 30.0
received: dict[str, float] = {}  # reply text → wall-clock arrival at the fake provider


class FakeProvider(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        arrived = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        received[str(body.get("text", ""))] = arrived
        answer = json.dumps({"id": f"fake-{arrived}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)


def start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes, once each has beaten (so start-up is not measured)."""
    env = {**os.environ, "CONVERSA_WORKER_INTERVAL": "0.05", "CONVERSA_WORKER_HEARTBEAT_EVERY": "0.5"}
    WorkerHeartbeat.objects.all().delete()
    workers = [subprocess.Popen([sys.executable, "manage.py", "conversa_worker"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
               for _ in range(count)]
    end = time.monotonic() + DEADLINE
    while WorkerHeartbeat.objects.count() < count:
        if time.monotonic() > end or any(worker.poll() is not None for worker in workers):
            raise SystemExit("the workers did not start")
        time.sleep(0.05)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def send_replies(client: APIClient, conversation: Conversation, label: str) -> dict[str, Any]:
    """REPLIES replies one after another (each waits for the provider call of the previous)."""
    pending = WebhookEvent.objects.filter(processed_at__isnull=True).count()
    texts = [f"{label}-{n}" for n in range(REPLIES)]
    for text in texts:
        response = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": text}, format="json")
        assert response.status_code == 201, response.content
        end = time.monotonic() + DEADLINE
        while text not in received:
            if time.monotonic() > end:
                raise SystemExit(f"reply {text!r} never reached the provider within {DEADLINE}s")
            time.sleep(0.005)
    message_ids = dict(Message.objects.filter(body__in=texts).values_list("pk", "body"))
    enqueued = {message_ids[row.args_kwargs["args"][0]]: row.enqueued_at.timestamp()
                for row in DBTaskResult.objects.filter(task_path=send_outbound_message.module_path)
                if row.args_kwargs["args"][0] in message_ids}
    latencies = [received[text] - enqueued[text] for text in texts]
    return {"replies": len(latencies), "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "max_ms": round(max(latencies) * 1000, 1), "mean_ms": round(statistics.mean(latencies) * 1000, 1),
            "webhook_backlog_at_start": pending,
            "webhook_backlog_at_end": WebhookEvent.objects.filter(processed_at__isnull=True).count()}


def build_backlog(line: Line, size: int) -> None:
    """`size` webhook events stored the way the endpoint stores them (each enqueues its task)."""
    for start in range(0, size, 500):
        with transaction.atomic():
            for n in range(start, min(size, start + 500)):
                body = json.dumps({"id": f"backlog-{n}", "from": f"+54911{n:07d}", "name": "Cola",
                                   "text": f"mensaje {n}"}).encode()
                store_webhook(line, body, {})


def main() -> None:
    backlog = min(int(sys.argv[1]) if len(sys.argv) > 1 else 5000, 20000)
    worker_count = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    call_command("migrate", verbosity=0)
    load_demo()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line = Line.objects.select_related("provider").get(number="+15550100001")
    line.provider.config = {**line.provider.config, "api_url": f"http://127.0.0.1:{server.server_address[1]}/send"}
    line.provider.save(update_fields=["config"])

    customer = json.dumps({"id": "bench-customer", "from": "+5491155550001", "name": "Ana", "text": "hola"}).encode()
    store_webhook(line, customer, {})
    make_worker(batch=True, interval=0).run()
    conversation = Conversation.objects.get(line=line, customer_phone="+5491155550001")
    if conversation.agent is None:
        agent1 = APIClient()
        user = get_user_model().objects.get(username="agent1")
        agent1.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
        agent1.post(f"/api/v1/conversations/{conversation.pk}/capture/")
        conversation.refresh_from_db()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=conversation.agent)[1]}")

    workers = start_workers(worker_count)
    try:
        baseline = send_replies(client, conversation, "baseline")
    finally:
        stop_workers(workers)
    started = time.perf_counter()
    build_backlog(line, backlog)
    built_in = time.perf_counter() - started
    workers = start_workers(worker_count)
    try:
        under_backlog = send_replies(client, conversation, "backlog")
    finally:
        stop_workers(workers)
        server.shutdown()
    print(json.dumps({"database": django.db.connection.vendor, "workers": worker_count, "backlog_events": backlog,
                      "backlog_built_s": round(built_in, 1), "reply_enqueued_to_provider_call": {
                          "baseline": baseline, "under_backlog": under_backlog}}, indent=2))


if __name__ == "__main__":
    main()
