"""Stored webhook events are claimed by the workers in batches (decision #40), on the suite's
database (SQLite and PostgreSQL): each claim is taken once, a dead worker's claim is taken over, a
released claim is claimable at once, and an idle worker is woken by the announcement (PostgreSQL
LISTEN/NOTIFY, in-process on SQLite) instead of its poll. Killed workers: tests/chaos/test_workers.py."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from tests.conftest import post_sandbox

from conversa.core.models import WorkerHeartbeat
from conversa.core.wake import TASKS, WEBHOOKS, Listener
from conversa.core.worker import make_worker
from conversa.inbox.models import Message
from conversa.inbox.tasks import send_outbound_message
from conversa.whatsapp.models import WebhookEvent
from conversa.whatsapp.services import (
    CUSTOMER_LOCKS,
    announce_stored_events,
    claim_webhook_events,
    customer_lock_key,
    process_webhook_batch,
    release_webhook_claims,
)


def _post(line: Any, count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        response = post_sandbox(line, {"id": f"claim-{n}", "from": f"+54911556{n:05d}", "name": "Ana", "text": "hola"})
        assert response.status_code == 200, response.content


def _beat(worker_id: str, *, ago: float = 0.0) -> None:
    at = timezone.now() - datetime.timedelta(seconds=ago)
    WorkerHeartbeat.objects.update_or_create(worker_id=worker_id, defaults={"beat_at": at}, create_defaults={
        "hostname": "h", "pid": 1, "queues": "*", "started_at": at, "beat_at": at})


def test_each_event_is_claimed_once_oldest_first(demo):
    _post(demo["sales_line"], 12)
    ids = sorted(WebhookEvent.objects.values_list("pk", flat=True))
    first = claim_webhook_events(worker_id="a", limit=5)
    second = claim_webhook_events(worker_id="b", limit=5)
    third = claim_webhook_events(worker_id="c", limit=5)
    assert (first, second, third) == (ids[:5], ids[5:10], ids[10:])
    assert claim_webhook_events(worker_id="d", limit=5) == []  # all held
    assert set(WebhookEvent.objects.values_list("attempts", flat=True)) == {1}
    assert not Message.objects.exists()  # claimed is not applied


def test_a_dead_workers_claim_is_taken_over_a_live_ones_is_not(demo, settings):
    settings.CONVERSA_WORKER_STALE_AFTER = 30
    _post(demo["sales_line"], 6)
    live = claim_webhook_events(worker_id="live", limit=3)
    dead = claim_webhook_events(worker_id="dead", limit=3)
    _beat("live")
    _beat("dead", ago=120)
    long_ago = timezone.now() - datetime.timedelta(minutes=10)
    WebhookEvent.objects.update(claimed_at=long_ago)  # both claims are old; only one claimer is alive

    taken_over = claim_webhook_events(worker_id="rescuer", limit=10)
    assert taken_over == dead
    assert set(WebhookEvent.objects.filter(pk__in=dead).values_list("attempts", flat=True)) == {2}
    assert set(WebhookEvent.objects.filter(pk__in=live).values_list("claimed_by", flat=True)) == {"live"}

    # A worker that never beat (just started, or drains in-process) keeps its claim for the stale limit.
    _post(demo["sales_line"], 2, start=100)
    fresh = claim_webhook_events(worker_id="never-beat", limit=10)
    assert len(fresh) == 2 and claim_webhook_events(worker_id="other", limit=10) == []


def test_released_claims_are_claimable_at_once_and_a_batch_applies_them(demo):
    _post(demo["sales_line"], 4)
    held = claim_webhook_events(worker_id="w1", limit=10)
    assert release_webhook_claims(worker_id="w1") == 4  # what a database error leaves behind
    assert claim_webhook_events(worker_id="w2", limit=10) == held
    release_webhook_claims(worker_id="w2")

    assert process_webhook_batch(worker_id="w3") == 4
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 4
    assert set(WebhookEvent.objects.values_list("claimed_by", "error")) == {(None, "")}
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert process_webhook_batch(worker_id="w3") == 0


def test_a_replayed_message_in_the_same_batch_is_stored_once(demo):
    line = demo["sales_line"]
    for text in ("hola", "hola otra vez"):  # different bodies (two events), the same message id
        response = post_sandbox(line, {"id": "same-id", "from": "+5491155570000", "name": "Ana", "text": text})
        assert response.status_code == 200, response.content
    assert process_webhook_batch(worker_id="w") == 2
    assert Message.objects.filter(provider_message_id="same-id").count() == 1


def test_events_of_a_customer_another_batch_holds_are_put_back_not_waited_for(demo):
    """PostgreSQL: a worker's batch takes an advisory lock per customer; another batch defers that
    customer's events (unapplied, the claim not counted) instead of queueing on its conversation."""
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's (SQLite runs one writer at a time)")
    line = demo["sales_line"]
    _post(line, 3)
    held = customer_lock_key(line_id=line.pk, line_ref="", sender="+5491155600001")
    params = connection.settings_dict
    with psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"],
                         host=params["HOST"], port=params["PORT"]) as other_batch:
        other_batch.execute("SELECT pg_advisory_xact_lock(%s, %s)", (CUSTOMER_LOCKS, held))
        assert process_webhook_batch(worker_id="w") == 3
        waiting = WebhookEvent.objects.get(processed_at__isnull=True)
        assert (waiting.claimed_by, waiting.attempts) == (None, 0)
        assert set(Message.objects.values_list("provider_message_id", flat=True)) == {"claim-0", "claim-2"}
        other_batch.rollback()
    assert process_webhook_batch(worker_id="w") == 1
    assert Message.objects.filter(provider_message_id="claim-1").exists()


def _listen(channels: list[str]) -> Listener:
    listener = Listener(channels=channels)
    listener.open()
    return listener


def _woken(listener: Listener, *, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if listener.wait(timeout=end - time.monotonic()):
            return True
    return False


def test_announcing_stored_events_and_enqueueing_tasks_wake_the_listeners():
    webhooks, tasks = _listen([WEBHOOKS]), _listen([TASKS])
    try:
        assert not webhooks.wait(timeout=0.05)  # nothing announced yet
        announce_stored_events(event_ids=[1])
        assert _woken(webhooks)
        send_outbound_message.enqueue(123)
        assert _woken(tasks)
        assert not webhooks.wait(timeout=0.05)  # a task is no news for a webhook-only listener
    finally:
        webhooks.close()
        tasks.close()


def test_an_idle_worker_is_woken_by_a_webhook_not_by_its_poll(demo):
    """The worker polls every 60 s here: the message is stored well before, so it was the
    announcement that woke it."""
    worker = make_worker(interval=60)
    runner = threading.Thread(target=_run_and_close, args=(worker,), daemon=True)
    runner.start()
    try:
        time.sleep(0.5)  # most likely idle by now (if not, its first look finds the message: still passes)
        posted = time.monotonic()
        _post(demo["sales_line"], 1, start=500)
        while not Message.objects.filter(provider_message_id="claim-500").exists():
            assert time.monotonic() - posted < 20, "the idle worker was not woken by the webhook"
            time.sleep(0.05)
    finally:
        worker.running = False
        runner.join(timeout=10)
    assert not runner.is_alive()


def _run_and_close(worker: Any) -> None:
    try:
        worker.run()
    finally:
        close_old_connections()
