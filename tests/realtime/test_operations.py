"""Operational surfaces of live updates: the health-check command."""

from __future__ import annotations

import io
import json

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
