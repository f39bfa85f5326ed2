"""The worker's queue hygiene in-process, on the suite's database (SQLite and PostgreSQL): no task
row per webhook event (the sweep never duplicates work), one sweeper at a time, abandoned RUNNING
rows run again, replies served before the webhook backlog, finished rows pruned, /healthz/ saying
why it is unhealthy.
tests/chaos/ does the same with real worker processes and a PostgreSQL that gets restarted."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from tests.conftest import drain_tasks, post_sandbox

from conversa.core.models import WorkerHeartbeat
from conversa.core.worker import (
    expire_abandoned_tasks,
    make_worker,
    prune_finished_tasks,
    sweep,
    take_lease,
)
from conversa.inbox.tasks import send_outbound_message
from conversa.whatsapp.models import WebhookEvent
from conversa.whatsapp.tasks import process_webhook_event

WEBHOOK_TASK = process_webhook_event.module_path


def _post_events(line: Any, count: int) -> list[int]:
    for n in range(count):
        response = post_sandbox(line, {"id": f"sweep-{n}", "from": f"+54911555{n:05d}", "name": "Ana", "text": "hola"})
        assert response.status_code == 200, response.content
    events = list(WebhookEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))
    assert len(events) == count
    WebhookEvent.objects.update(received_at=timezone.now() - datetime.timedelta(minutes=5))
    return events


def test_stored_events_get_no_task_rows_and_sweeping_never_duplicates_work(demo):
    """Workers claim stored events themselves (decision #40): no task row per webhook, and the
    sweep only wakes workers for events nobody holds, however often it runs."""
    events = _post_events(demo["sales_line"], 12)
    assert not DBTaskResult.objects.filter(task_path=WEBHOOK_TASK).exists()
    for _ in range(5):
        assert sweep()["webhook_events"] == 12  # overdue and unclaimed: the workers are woken
    assert not DBTaskResult.objects.exists()

    drain_tasks()
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert set(WebhookEvent.objects.values_list("attempts", "claimed_by")) == {(1, None)}
    assert sweep()["webhook_events"] == 0
    assert len(events) == 12


def test_one_sweeper_at_a_time():
    assert take_lease(name="sweep", holder="worker-a", seconds=30)
    assert not take_lease(name="sweep", holder="worker-b", seconds=30)
    assert take_lease(name="sweep", holder="worker-a", seconds=30)  # the holder renews
    assert not take_lease(name="sweep", holder="worker-b", seconds=30)
    # The holder died: once its lease expires, another worker takes over.
    assert take_lease(name="sweep", holder="worker-a", seconds=-1)
    assert take_lease(name="sweep", holder="worker-b", seconds=30)
    assert not take_lease(name="sweep", holder="worker-a", seconds=30)


def _running_row(*, worker_ids: list[str], started_ago: float) -> DBTaskResult:
    result = process_webhook_event.enqueue(0)
    DBTaskResult.objects.filter(pk=result.id).update(
        status=TaskResultStatus.RUNNING, worker_ids=worker_ids,
        started_at=timezone.now() - datetime.timedelta(seconds=started_ago))
    return DBTaskResult.objects.get(pk=result.id)


def test_running_rows_of_dead_workers_run_again(settings):
    settings.CONVERSA_WORKER_STALE_AFTER = 30
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="alive", hostname="h", pid=1, queues="*", started_at=now, beat_at=now)
    WorkerHeartbeat.objects.create(worker_id="dead", hostname="h", pid=2, queues="*", started_at=now,
                                   beat_at=now - datetime.timedelta(minutes=5))
    of_live_worker = _running_row(worker_ids=["alive"], started_ago=600)
    just_started = _running_row(worker_ids=["never-beat"], started_ago=1)
    of_dead_worker = _running_row(worker_ids=["dead"], started_ago=600)
    killed_too_often = _running_row(worker_ids=["dead"] * settings.CONVERSA_TASK_MAX_RUNS, started_ago=600)

    assert expire_abandoned_tasks() == 2
    status = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert status[of_live_worker.pk] == TaskResultStatus.RUNNING
    assert status[just_started.pk] == TaskResultStatus.RUNNING
    assert status[of_dead_worker.pk] == TaskResultStatus.READY
    assert status[killed_too_often.pk] == TaskResultStatus.FAILED

    drain_tasks()  # another worker runs the put-back row to its end (event 0 does not exist: failed)
    rerun = DBTaskResult.objects.get(pk=of_dead_worker.pk)
    assert rerun.status == TaskResultStatus.FAILED and "DoesNotExist" in rerun.exception_class_path
    assert len(rerun.worker_ids) == 2


def test_replies_are_served_before_the_webhook_backlog():
    for n in range(50):
        process_webhook_event.enqueue(n)
    reply = send_outbound_message.enqueue(123)
    claimed = make_worker(batch=True).claim_next()
    assert claimed is not None and str(claimed.pk) == reply.id
    # A worker that serves only the webhooks queue never takes the reply.
    webhook_only = make_worker(batch=True, queues=["webhooks"]).claim_next()
    assert webhook_only is not None and webhook_only.task_path == WEBHOOK_TASK


def test_finished_task_rows_are_pruned_after_the_retention(settings):
    settings.CONVERSA_TASK_RETENTION = 3600
    old, recent, waiting = (process_webhook_event.enqueue(n) for n in range(3))
    DBTaskResult.objects.filter(pk__in=[old.id, recent.id]).update(status=TaskResultStatus.SUCCESSFUL)
    DBTaskResult.objects.filter(pk=old.id).update(finished_at=timezone.now() - datetime.timedelta(hours=2))
    DBTaskResult.objects.filter(pk=recent.id).update(finished_at=timezone.now())
    assert prune_finished_tasks() == 1
    assert {str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)} == {recent.id, waiting.id}


def test_healthz_says_why_it_is_unhealthy(client, demo, settings):
    settings.CONVERSA_HEALTH_REQUIRE_WORKER = True
    settings.CONVERSA_HEALTH_MAX_BACKLOG_AGE = 120
    no_worker = client.get("/healthz/")
    assert no_worker.status_code == 503
    assert no_worker.json()["workers"] == {"alive": 0, "stale": 0}
    assert any("no task worker" in problem for problem in no_worker.json()["problems"])

    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", hostname="h", pid=1, queues="*", started_at=now, beat_at=now)
    healthy = client.get("/healthz/")
    assert healthy.status_code == 200, healthy.json()
    assert healthy.json()["workers"]["alive"] == 1

    post_sandbox(demo["sales_line"], {"id": "old-1", "from": "+5491155550001", "name": "Ana", "text": "hola"})
    WebhookEvent.objects.update(received_at=now - datetime.timedelta(minutes=10))
    backlog = client.get("/healthz/")
    assert backlog.status_code == 503
    assert backlog.json()["webhook_backlog"]["pending"] == 1
    assert any("oldest unprocessed webhook event" in problem for problem in backlog.json()["problems"])

    settings.CONVERSA_HEALTH_MAX_BACKLOG_AGE = 3600
    settings.CONVERSA_HEALTH_MAX_BACKLOG = 0
    too_many = client.get("/healthz/")
    assert too_many.status_code == 503
    assert any("1 unprocessed webhook events" in problem for problem in too_many.json()["problems"])
