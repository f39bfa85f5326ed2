"""Operational surfaces of live updates: the health-check command."""

from __future__ import annotations

import io
import json

import pytest
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
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


def test_production_layer_is_redis_pub_sub_with_bounded_waits():
    """Redis pub/sub (one subscription per process, decisions #43), and no Redis call that can hang
    a publish for ever: socket and connect timeouts are set."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        pytest.skip("the Redis channel layer is configured only with REDIS_URL")
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] > 0 and host["socket_connect_timeout"] > 0
