"""Live fan-out once per process (decisions #43): however many sockets a process has, it holds one
channel-layer membership per group; sockets leaving leave nothing behind; the log re-read, once
per process, repairs what the live feed lost. In-process, through the real ASGI application (the
in-memory layer on SQLite, Redis pub/sub when REDIS_URL is set)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from redis import Redis

from conversa.campaigns.models import Campaign
from conversa.realtime.fanout import existing_hub
from conversa.realtime.groups import agent_group, campaign_group
from conversa.realtime.models import EventTarget, StreamEvent

SALES_AGENTS = ("agent1", "agent2", "agent3")


def sales_group() -> str:
    return campaign_group(Campaign.objects.get(name="Sales").pk)


def uid(username: str) -> int:
    return int(get_user_model().objects.get(username=username).pk)


def layer_subscribers(server_loop: Any, group: str) -> int:
    """How many channels the channel layer itself holds in `group` (Redis: subscriptions)."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return len(layer.groups.get(group, {}))
    config = django_settings.CHANNEL_LAYERS["default"]["CONFIG"]
    with Redis.from_url(config["hosts"][0]["address"]) as redis:
        name = f"{config['prefix']}__group__{group}"
        return int(dict(redis.pubsub_numsub(name))[name.encode()])


def until(what: str, check: Callable[[], bool], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)  # polling the server loop's state: nothing to wait on
    raise AssertionError(f"timed out waiting for {what}")


def test_many_sockets_share_one_subscription_and_get_each_event_once(demo, open_socket, customer_says,
                                                                     barrier, server_loop):
    sockets = [open_socket(SALES_AGENTS[n % 3]) for n in range(30)]
    group = sales_group()
    hub = existing_hub(server_loop.loop)
    assert hub is not None
    assert len(hub.members[group]) == 30
    assert layer_subscribers(server_loop, group) == 1

    customer_says("Hola", phone="+5491155550301")
    customer_says("Otra vez", phone="+5491155550301")
    customer_says("Soy otra", phone="+5491155550302")
    expected = sorted(set(EventTarget.objects.filter(group=group).values_list("event_id", flat=True)))
    assert len(expected) >= 5  # two conversations created, three messages

    marker = barrier(*(agent_group(uid(username)) for username in SALES_AGENTS))
    for n, socket in enumerate(sockets):
        ids = [f["id"] for f in socket.until_barrier(marker)]
        assert ids == expected, f"socket {n}"


def test_closing_sockets_leave_no_subscription_behind(demo, open_socket, server_loop):
    sockets = [open_socket(SALES_AGENTS[n % 3]) for n in range(12)] + [open_socket("supervisor")]
    group = sales_group()
    hub = existing_hub(server_loop.loop)
    assert hub is not None and layer_subscribers(server_loop, "supervisors") == 1

    for socket in sockets[:6]:
        socket.disconnect()
    assert layer_subscribers(server_loop, group) == 1  # others still listen
    for socket in sockets[6:]:
        socket.disconnect()

    until("the hub to forget every socket", lambda: not hub.members)
    groups = (group, "supervisors", *(agent_group(uid(u)) for u in (*SALES_AGENTS, "supervisor")))
    until("no membership left in the layer (Redis: no subscription)",
          lambda: all(layer_subscribers(server_loop, name) == 0 for name in groups))


def test_the_log_re_read_delivers_what_the_live_feed_lost_once_per_process(demo, open_socket, server_loop,
                                                                            settings, barrier):
    settings.CONVERSA_EVENT_RECHECK_EVERY = 0.5
    group = sales_group()
    sockets = [open_socket(SALES_AGENTS[n % 3]) for n in range(10)]
    # An event in the log whose live send never happened (lost with Redis, a send that failed twice).
    with transaction.atomic():
        lost = StreamEvent.objects.create(type="conversation.created", payload={"conversation": {"id": 0}})
        EventTarget.objects.create(event=lost, group=group)

    for n, socket in enumerate(sockets):
        frames = socket.until(lambda f: f.get("id") == lost.pk, timeout=10)
        assert [f["id"] for f in frames] == [lost.pk], f"socket {n}"
    # Repaired once: later events follow, and the lost one is not sent again.
    marker = barrier(group)
    for socket in sockets:
        assert socket.until_barrier(marker) == []


def test_a_socket_that_joins_after_an_event_is_not_sent_it_by_the_re_read(demo, open_socket, server_loop,
                                                                          settings, customer_says, barrier):
    """The re-read repairs the live feed only: what happened before a socket said hello is the
    client's catch-up (`last_event_id`), not pushed at it."""
    settings.CONVERSA_EVENT_RECHECK_EVERY = 0.3
    customer_says("Antes", phone="+5491155550311")
    early = open_socket("agent1")
    late = open_socket("agent2")
    hub = existing_hub(server_loop.loop)
    assert hub is not None
    server_loop.run(hub.repair(grace=0))
    marker = barrier(sales_group())
    assert early.until_barrier(marker) == []
    assert late.until_barrier(marker) == []


def test_a_batching_socket_gets_what_piled_up_in_one_array_frame(demo, open_socket, customer_says, server_loop):
    """?frames=batch (the console's): frames queued for a socket while it was busy leave as one
    JSON array, in order — here a catch-up, queued all at once; other sockets keep a frame each."""
    customer_says("Hola", phone="+5491155550311")
    customer_says("Otra vez", phone="+5491155550311")
    customer_says("Soy otra", phone="+5491155550312")
    expected = sorted(set(EventTarget.objects.filter(group=sales_group()).values_list("event_id", flat=True)))
    assert len(expected) >= 5

    batched = open_socket("agent1", path="/ws/agent/?frames=batch", last_event_id=0)
    caught_up: list[dict[str, Any]] = []
    frame_count = 0
    while len(caught_up) < len(expected):
        raw = batched.receive_raw()
        frame_count += 1
        assert isinstance(raw, list), raw  # after hello, everything of the replay was queued at once
        assert all(isinstance(f, dict) for f in raw)
        caught_up.extend(raw)
    assert [f["id"] for f in caught_up] == expected
    assert frame_count < len(expected)  # fewer frames than events

    single = open_socket("agent1", last_event_id=0)
    assert [single.receive()["id"] for _ in expected] == expected  # one dict per frame, as before
