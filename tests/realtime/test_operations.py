"""Operational surfaces of live updates: the health-check command."""

from __future__ import annotations

import io
import json

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.core.management import CommandError, call_command

from conversa.realtime.stream import current_event_id


def test_realtime_check_round_trips_the_channel_layer_and_reports_the_log(demo, customer_says):
    customer_says("Hola")
    out = io.StringIO()
    call_command("realtime_check", "--timeout", "2", stdout=out)
    report = json.loads(out.getvalue())
    assert isinstance(report["round_trip_ms"], float) and 0 <= report["round_trip_ms"] <= 2000
    assert report["events"] > 0
    assert report["last_event_id"] == current_event_id()
    assert report["oldest_event_age_s"] is not None


def test_realtime_check_fails_when_the_round_trip_does_not_come_back(demo):
    """No time at all to read the message back: the check must fail, not report a round trip."""
    with pytest.raises(CommandError, match="round trip failed"):
        call_command("realtime_check", "--timeout", "0", stdout=io.StringIO())


def test_redis_reads_outlast_the_channel_layers_blocking_pop():
    """redis-py 8 defaults socket_timeout to 5 s, as long as channels_redis's BZPOPMIN: idle
    consumers died every 5 s. The production test also holds a socket idle past it."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        pytest.skip("the Redis channel layer is configured only with REDIS_URL")
    timeout = layer.create_pool(0).connection_kwargs.get("socket_timeout")
    # settings.py sets 15 s explicitly (redis-py's own default would be the 5 s that broke).
    assert timeout == 15 and timeout > layer.brpop_timeout
