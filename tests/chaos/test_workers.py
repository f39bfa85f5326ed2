"""Workers survive and the queue stays sane (issue 8 items 3, 4, 5; issue 10: webhook batches), with
real worker processes on a PostgreSQL cluster of the test's own that gets restarted and whose
workers get kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from tests.chaos.conftest import BIN, Deployment, RedisServer, poll
from tests.servers import REPO
from websockets.asyncio.client import connect

pytestmark = pytest.mark.postgres_only
WEBHOOK_TASK = "conversa.whatsapp.tasks.process_webhook_event"


def test_worker_keeps_processing_after_postgresql_restarts(deployment: Deployment):
    web = deployment.web()
    worker, _ = deployment.worker("worker")
    for n in range(15):
        deployment.post_webhook(web, n)
    poll("the first webhooks processed", lambda: deployment.unprocessed() == 0, alive=deployment.check_alive)

    deployment.cluster.stop()  # the worker's next poll, beat and sweep all fail
    deployment.cluster.start()
    # The web process may answer 503 (Retry-After) until its pool has fresh connections; a provider
    # retries those, so does this test.
    poll("the web storing webhooks again", lambda: _post_accepted(deployment, web, 15))
    for n in range(16, 30):
        deployment.post_webhook(web, n)
    poll("the webhooks posted after the restart processed", lambda: deployment.unprocessed() == 0,
         alive=deployment.check_alive)
    assert worker.poll() is None, deployment.log("worker")
    assert deployment.sql("SELECT count(*) FROM whatsapp_webhookevent")[0][0] == 30
    assert deployment.sql("SELECT count(*) FROM inbox_message WHERE direction = 'in'")[0][0] == 30
    # The heartbeat came back too.
    poll("a fresh heartbeat", lambda: deployment.sql(
        "SELECT count(*) FROM core_workerheartbeat WHERE beat_at > now() - interval '2 seconds'")[0][0] == 1)


def _post_accepted(deployment: Deployment, web: str, n: int) -> bool:
    payload = {"id": f"chaos-{n}", "from": f"+54911555{n:05d}", "name": "Ana", "text": f"mensaje {n}"}
    response = httpx.post(f"{web}/webhooks/sandbox/{deployment.line_id}/", json=payload, timeout=10)
    assert response.status_code in (200, 503), response.text
    return response.status_code == 200


def test_a_task_of_a_killed_worker_is_run_again_by_another(deployment: Deployment):
    web = deployment.web()
    deployment.post_webhook(web, 1)
    event_id = deployment.sql("SELECT id FROM whatsapp_webhookevent")[0][0]
    # A task row as an older version enqueued one per webhook (still run, as any task).
    enqueued = subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c",
                               "from conversa.whatsapp.tasks import process_webhook_event as t; "
                               f"t.enqueue({event_id})"], cwd=REPO, env=deployment.env(), capture_output=True,
                              timeout=120)
    assert enqueued.returncode == 0, enqueued.stderr.decode()
    # Hold the event's row, so the task blocks mid-run (as a slow task would); the batch claim skips it.
    with deployment.cluster.connect(deployment.database) as blocker:
        blocker.execute("SELECT id FROM whatsapp_webhookevent WHERE id = %s FOR UPDATE", (event_id,))
        victim, victim_id = deployment.worker("victim")
        poll("the victim running the task", lambda: deployment.sql(
            "SELECT 1 FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING' AND worker_ids->>-1 = %s",
            victim_id), alive=deployment.check_alive)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        blocker.rollback()

    _, rescuer_id = deployment.worker("rescuer")
    poll("the event processed", lambda: deployment.unprocessed() == 0, alive=deployment.check_alive)
    rows = poll("the task run to its end by the rescuer", lambda: deployment.sql(
        "SELECT status, worker_ids FROM django_tasks_database_dbtaskresult WHERE task_path = %s "
        "AND status NOT IN ('READY', 'RUNNING')", WEBHOOK_TASK), alive=deployment.check_alive)
    assert rows == [("SUCCESSFUL", [victim_id, rescuer_id])]
    assert deployment.sql("SELECT count(*) FROM inbox_message WHERE direction = 'in'")[0][0] == 1


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(deployment: Deployment):
    """500 webhook events claimed as one batch; the worker is kill -9'd while half of them are
    applied in its open transaction. Another worker takes the claim over once the victim's
    heartbeat is stale (3 s here) and every message is stored exactly once."""
    web = deployment.web()
    blocked = "+5491155501250"  # the customer of webhook 1250, half-way through the batch's order
    response = httpx.post(f"{web}/webhooks/sandbox/{deployment.line_id}/", timeout=10,
                          json={"id": "chaos-earlier", "from": blocked, "name": "Ana", "text": "hola"})
    assert response.status_code == 200, response.text
    drained = subprocess.run([str(BIN / "python"), "manage.py", "conversa_worker", "--batch"], cwd=REPO,
                             env=deployment.env(), capture_output=True, timeout=120)
    assert drained.returncode == 0, drained.stderr.decode()
    assert deployment.unprocessed() == 0
    for n in range(1000, 1500):
        deployment.post_webhook(web, n)
    assert deployment.unprocessed() == 500

    with deployment.cluster.connect(deployment.database) as blocker:
        blocker.execute("SELECT id FROM inbox_conversation WHERE customer_phone = %s FOR UPDATE", (blocked,))
        victim, victim_id = deployment.worker("victim", CONVERSA_WEBHOOK_BATCH="500")
        poll("the victim's batch waiting half-way", lambda: deployment.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            deployment.database)[0][0] == 1, alive=deployment.check_alive)
        assert deployment.sql("SELECT count(*) FROM whatsapp_webhookevent WHERE claimed_by = %s",
                              victim_id)[0][0] == 500
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        blocker.rollback()
    assert deployment.sql("SELECT count(*) FROM inbox_message")[0][0] == 1  # nothing of the batch committed

    started = time.monotonic()
    deployment.worker("rescuer")
    poll("every event processed by the rescuer", lambda: deployment.unprocessed() == 0, deadline=60,
         alive=deployment.check_alive)
    assert time.monotonic() - started < 60
    per_id = deployment.sql("SELECT provider_message_id, count(*) FROM inbox_message WHERE direction = 'in' "
                            "GROUP BY 1")
    assert len(per_id) == 501 and {count for _, count in per_id} == {1}
    assert deployment.sql("SELECT min(attempts), max(attempts) FROM whatsapp_webhookevent "
                          "WHERE claimed_by IS NULL AND processed_at IS NOT NULL AND id > (SELECT min(id) "
                          "FROM whatsapp_webhookevent)")[0] == (2, 2)  # the victim's claim, then the rescuer's
    assert not deployment.sql("SELECT 1 FROM django_tasks_database_dbtaskresult WHERE task_path = %s", WEBHOOK_TASK)


def test_sweeping_workers_never_duplicate_webhook_work(deployment: Deployment):
    """Two workers that serve only outbound (so nobody claims the webhooks) sweep every 0.5 s with
    events overdue after 1 s: no task row appears per event, and once a webhook worker starts
    each event is processed once."""
    web = deployment.web()
    for n in range(20):
        deployment.post_webhook(web, n)
    deployment.worker("worker-a", "--queues", "outbound")
    deployment.worker("worker-b", "--queues", "outbound")
    renewals: set[object] = set()

    def swept_many_times() -> bool:
        renewals.update(row[0] for row in deployment.sql("SELECT expires_at FROM core_lease WHERE name = 'sweep'"))
        return len(renewals) >= 8

    poll("8 sweep cycles", swept_many_times, alive=deployment.check_alive)
    assert deployment.unprocessed() == 20
    assert deployment.sql("SELECT count(*) FROM django_tasks_database_dbtaskresult")[0][0] == 0
    assert len(deployment.sql("SELECT holder FROM core_lease")) == 1

    deployment.worker("webhooks", "--queues", "webhooks")
    poll("the backlog processed", lambda: deployment.unprocessed() == 0, alive=deployment.check_alive)
    assert deployment.sql("SELECT count(*), count(DISTINCT provider_message_id) FROM inbox_message "
                          "WHERE direction = 'in'")[0] == (20, 20)
    assert {row[0] for row in deployment.sql("SELECT attempts FROM whatsapp_webhookevent")} == {1}


def test_a_webhook_reaches_an_agent_socket_without_waiting_for_a_poll(deployment: Deployment,
                                                                      redis_server: RedisServer):
    """The worker's fallback poll is 60 s here: the event reaches the supervisor's socket well
    within that, so the worker was woken by the webhook's announcement (LISTEN/NOTIFY)."""
    layer = {"REDIS_URL": redis_server.url, "CHANNEL_LAYER_PREFIX": "chaos", "SECRET_KEY": "chaos-wake"}
    web = deployment.web(**layer)
    deployment.worker("worker", "--interval", "60", **layer)
    token = httpx.post(f"{web}/api/v1/auth/token/", data={"username": "admin", "password": "demo"}, timeout=10)
    assert token.status_code == 200, token.text
    url = web.replace("http://", "ws://") + f"/ws/agent/?token={token.json()['token']}"

    async def scenario() -> list[str]:
        texts: list[str] = []
        async with connect(url, open_timeout=10) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["event"] == "hello"
            for n in range(3):
                await asyncio.to_thread(deployment.post_webhook, web, n)
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))  # < the 60 s poll
                    if frame["event"] == "message.created":
                        texts.append(frame["payload"]["message"]["body"])
                        break
        return texts

    assert asyncio.run(scenario()) == ["mensaje 0", "mensaje 1", "mensaje 2"]


def test_a_reply_enqueued_while_the_worker_idles_is_sent_without_waiting_for_a_poll(deployment: Deployment):
    """The worker skips the task queue between webhook batches once a look found it empty, until a
    notification says a task was enqueued: that notification must still bring it there at once
    (the fallback poll is 60 s here; the reply goes out well before)."""
    web = deployment.web()
    deployment.worker("worker", "--interval", "60")
    for n in range(3):
        deployment.post_webhook(web, n)
    poll("the webhooks processed", lambda: deployment.unprocessed() == 0, alive=deployment.check_alive)
    [(conversation_id,)] = deployment.sql("SELECT id FROM inbox_conversation ORDER BY id LIMIT 1")
    token = httpx.post(f"{web}/api/v1/auth/token/", data={"username": "agent1", "password": "demo"}, timeout=10)
    assert token.status_code == 200, token.text
    api = httpx.Client(base_url=f"{web}/api/v1", timeout=10,
                       headers={"Authorization": f"Token {token.json()['token']}"})
    assert api.post(f"/conversations/{conversation_id}/capture/").status_code == 200
    for n in range(2):  # twice: the second finds the worker idle again after the first
        sent = api.post(f"/conversations/{conversation_id}/messages/", json={"text": f"respuesta {n}"})
        assert sent.status_code in (200, 201, 202), sent.text
        poll(f"reply {n} sent", lambda expected=n + 1: deployment.sql(
            "SELECT count(*) FROM inbox_message WHERE direction = 'out' AND status NOT IN ('queued', 'failed')"
        )[0][0] == expected, deadline=20, alive=deployment.check_alive)


def test_healthz_is_503_without_live_workers_or_with_an_old_backlog(deployment: Deployment):
    web = deployment.web(CONVERSA_HEALTH_MAX_BACKLOG_AGE="3")

    def health() -> httpx.Response:
        return httpx.get(f"{web}/healthz/", timeout=5)

    no_worker = health()
    assert no_worker.status_code == 503
    assert any("no task worker" in problem for problem in no_worker.json()["problems"])

    worker, _ = deployment.worker("worker")
    healthy = poll("/healthz/ 200 once the worker beats", lambda: (r := health()).status_code == 200 and r)
    assert healthy.json()["workers"]["alive"] == 1

    os.kill(worker.pid, signal.SIGKILL)  # dies without a word: only its stale heartbeat tells
    worker.wait(10)
    dead = poll("/healthz/ 503 once the heartbeat is stale", lambda: (r := health()).status_code == 503 and r)
    assert any("no task worker" in problem for problem in dead.json()["problems"])

    deployment.worker("outbound-only", "--queues", "outbound")  # alive, but nobody serves webhooks
    deployment.post_webhook(web, 1)
    stuck = poll("/healthz/ 503 for the old backlog",
                 lambda: (r := health()).status_code == 503 and "oldest unprocessed" in r.text and r)
    assert stuck.json()["workers"]["alive"] == 1
    assert stuck.json()["webhook_backlog"]["pending"] == 1
