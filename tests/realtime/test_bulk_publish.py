"""publishing_in_bulk() (the webhook workers' batches, issue 10): the events of a block are written
with one insert of events and one of targets (one statement for both on PostgreSQL), in publish
order, inside the caller's transaction; what a rolled-back savepoint published is neither written
nor sent; sockets get the rest after commit."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from conversa.realtime.fanout import EVENT_MESSAGE
from conversa.realtime.groups import SUPERVISORS, agent_group
from conversa.realtime.models import EventTarget, StreamEvent
from conversa.realtime.services import _publish_pipelined, publish, publishing_in_bulk


class Boom(Exception):
    pass


def _inserts(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "INSERT INTO" in q["sql"]]


def test_events_of_a_block_are_written_in_two_statements_without_the_rolled_back_ones(demo, open_socket):
    """Two statements; one on PostgreSQL (events and targets in one WITH ... INSERT)."""
    agent = get_user_model().objects.get(username="agent1")
    socket = open_socket("agent1")
    group = agent_group(agent.pk)
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), publishing_in_bulk():
        first = publish("test.kept", {"n": 1}, [group, SUPERVISORS])
        with pytest.raises(Boom), transaction.atomic():
            publish("test.undone", {"n": 2}, [group])
            raise Boom
        publish("test.kept", {"n": 3}, [group])
        assert StreamEvent.objects.filter(type__startswith="test.").count() == 0, "noted, not yet written"
    assert len(_inserts(captured)) == (1 if connection.vendor == "postgresql" else 2), _inserts(captured)
    rows = list(StreamEvent.objects.filter(type__startswith="test.").order_by("pk"))
    assert [(e.type, e.payload) for e in rows] == [("test.kept", {"n": 1}), ("test.kept", {"n": 3})]
    assert rows[0].pk == first.pk
    assert sorted(EventTarget.objects.filter(event=rows[0]).values_list("group", flat=True)) == sorted(
        [group, SUPERVISORS])
    frames = socket.until(lambda f: f.get("payload", {}).get("n") == 3)
    assert [(f["id"], f["payload"]["n"]) for f in frames if f["event"].startswith("test.")] == [
        (rows[0].pk, 1), (rows[1].pk, 3)]


def test_a_failed_block_writes_and_sends_nothing(demo):
    with pytest.raises(Boom), transaction.atomic(), publishing_in_bulk():
        publish("test.undone", {"n": 1}, [SUPERVISORS])
        raise Boom
    with transaction.atomic(), publishing_in_bulk():
        publish("test.kept", {"n": 2}, [SUPERVISORS])
    assert list(StreamEvent.objects.filter(type__startswith="test.").values_list("type", flat=True)) == ["test.kept"]


def test_outside_a_transaction_events_are_written_as_they_come(demo):
    with publishing_in_bulk():
        event = publish("test.now", {"n": 1}, [SUPERVISORS])
        assert StreamEvent.objects.filter(pk=event.pk).exists()


def test_a_batch_goes_to_redis_in_one_pipeline_and_reaches_every_group() -> None:
    """Production's pub/sub layer: after commit a batch's events are published with one pipeline
    (the layer's internals it relies on are still there: otherwise it would fall back to one
    `group_send` per event and group), and each event reaches each of its groups' subscribers."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        pytest.skip("the Redis channel layer is configured only with REDIS_URL")
    groups = [f"pipeline-{secrets.token_hex(4)}", f"pipeline-{secrets.token_hex(4)}"]

    async def scenario() -> tuple[bool, list[tuple[int, str]]]:
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, channel)
        batch = [(groups, {"type": EVENT_MESSAGE, "id": n, "event": "test.piped", "payload": {"n": n},
                           "groups": groups}) for n in (1, 2, 3)]
        piped = await _publish_pipelined(layer, batch)
        received = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(len(batch) * len(groups))]
        for group in groups:
            await layer.group_discard(group, channel)
        return piped, [(m["id"], m["event"]) for m in received]

    piped, received = asyncio.run(scenario())
    assert piped is True
    assert sorted(received) == [(n, "test.piped") for n in (1, 1, 2, 2, 3, 3)]
