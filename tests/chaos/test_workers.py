"""Workers survive and the queue stays sane (issue 8 items 3, 4, 5), with real worker processes
on a PostgreSQL cluster of the test's own that gets restarted and whose workers get kill -9."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from tests.chaos.conftest import Deployment, poll

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
    for n in range(15, 30):
        deployment.post_webhook(web, n)
    poll("the webhooks posted after the restart processed", lambda: deployment.unprocessed() == 0,
         alive=deployment.check_alive)
    assert worker.poll() is None, deployment.log("worker")
    assert deployment.sql("SELECT count(*) FROM whatsapp_webhookevent")[0][0] == 30
    assert deployment.sql("SELECT count(*) FROM inbox_message WHERE direction = 'in'")[0][0] == 30
    # The heartbeat came back too.
    poll("a fresh heartbeat", lambda: deployment.sql(
        "SELECT count(*) FROM core_workerheartbeat WHERE beat_at > now() - interval '2 seconds'")[0][0] == 1)


def test_task_of_a_killed_worker_is_run_again_by_another(deployment: Deployment):
    web = deployment.web()
    deployment.post_webhook(web, 1)
    event_id = deployment.sql("SELECT id FROM whatsapp_webhookevent")[0][0]
    # Hold the event's row, so the worker's task blocks mid-run (as a slow task would).
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
    poll("the event processed by the rescuer", lambda: deployment.unprocessed() == 0, alive=deployment.check_alive)
    rows = deployment.sql("SELECT status, worker_ids FROM django_tasks_database_dbtaskresult WHERE task_path = %s",
                          WEBHOOK_TASK)
    assert rows == [("SUCCESSFUL", [victim_id, rescuer_id])]
    assert deployment.sql("SELECT count(*) FROM inbox_message WHERE direction = 'in'")[0][0] == 1


def test_sweep_keeps_one_task_per_waiting_event_across_workers(deployment: Deployment):
    """Two workers that serve only outbound (so webhook tasks wait) sweep every 0.5 s with events
    overdue after 1 s: over many sweep cycles each event still has exactly one task."""
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
    per_event = deployment.sql(
        "SELECT args_kwargs->'args'->>0, count(*) FROM django_tasks_database_dbtaskresult WHERE task_path = %s "
        "GROUP BY 1", WEBHOOK_TASK)
    assert len(per_event) == 20
    assert {count for _, count in per_event} == {1}
    assert len(deployment.sql("SELECT holder FROM core_lease")) == 1


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
