"""Operational surfaces of live updates: the health-check command."""

from __future__ import annotations

import io
import json

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.core.management import call_command

from conversa.realtime.stream import current_event_id


def test_realtime_check_round_trips_the_channel_layer_and_reports_the_log(demo, customer_says):
    customer_says("Hola")
    out = io.StringIO()
    call_command("realtime_check", stdout=out)
    report = json.loads(out.getvalue())
    assert report["round_trip_ms"] >= 0
    assert report["events"] > 0
    assert report["last_event_id"] == current_event_id()
    assert report["oldest_event_age_s"] is not None


def test_redis_reads_outlast_the_channel_layers_blocking_pop():
    """redis-py 8 defaults socket_timeout to 5 s, as long as channels_redis's BZPOPMIN: idle
    consumers died every 5 s. The production test also holds a socket idle past it."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        pytest.skip("the Redis channel layer is configured only with REDIS_URL")
    timeout = layer.create_pool(0).connection_kwargs.get("socket_timeout")
    assert timeout is None or timeout > layer.brpop_timeout
