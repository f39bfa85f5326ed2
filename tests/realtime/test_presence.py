"""The presence heartbeat (decisions #60): the web process holding a console socket refreshes its row,
so the sweep, which deletes rows nobody refreshed for the stale interval (left by a web process
that died), never deletes a live socket's; a live socket whose row was removed anyway is recorded
again. Real consumers on a real event loop, the real sweep; small intervals, polled with deadlines."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from conversa.accounts.models import AgentProfile, AgentSocket
from conversa.core.worker import sweep
from conversa.realtime import presence

T = TypeVar("T")
HEARTBEAT, STALE, GRACE = 0.2, 1.0, 0.5


@pytest.fixture
def fast_presence(settings: Any) -> None:
    settings.CONVERSA_PRESENCE_HEARTBEAT_EVERY = HEARTBEAT
    settings.CONVERSA_PRESENCE_STALE_AFTER = STALE
    settings.CONVERSA_PRESENCE_GRACE = GRACE


def poll(what: str, check: Callable[[], T | None], deadline: float = 15.0) -> T:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.05)  # the heartbeat runs on the server loop: nothing to wait on but its effect
    pytest.fail(f"timed out after {deadline}s waiting for {what}")


def status(user_id: int) -> str:
    return str(AgentProfile.objects.get(user_id=user_id).status)


def test_a_live_socket_outlives_the_stale_interval_and_a_dead_process_row_does_not(demo, open_socket,
                                                                                 fast_presence):
    agent2 = get_user_model().objects.get(username="agent2")
    AgentProfile.objects.filter(user=agent2).update(status=AgentProfile.Status.OFFLINE)
    # A row a killed web process left behind: opened, never refreshed, never closed.
    orphan = presence.socket_opened(user_id=agent2.pk)
    socket = open_socket("agent2")
    # Recorded right after the hello.
    live = poll("the socket recorded", lambda: AgentSocket.objects.exclude(pk=orphan).filter(user=agent2).first())
    assert status(agent2.pk) == "ready"

    # Refreshed by its process after it had been open longer than the stale interval.
    poll("the live socket's row refreshed past the stale interval", lambda: AgentSocket.objects.filter(
        pk=live.pk, seen_at__gt=live.opened_at + datetime.timedelta(seconds=STALE * 1.5)).exists())
    sweep()
    assert list(AgentSocket.objects.filter(user=agent2).values_list("pk", flat=True)) == [live.pk]
    assert status(agent2.pk) == "ready"

    # Closed: the grace period runs from the close, then she is offline.
    socket.disconnect()
    assert not AgentSocket.objects.filter(user=agent2).exists()
    closed_at = timezone.now()
    poll("the grace period over", lambda: timezone.now() > closed_at + datetime.timedelta(seconds=GRACE))
    sweep()
    assert status(agent2.pk) == "offline"


def test_a_stale_row_removed_from_under_a_live_socket_is_recorded_again(demo, open_socket, fast_presence):
    agent1 = get_user_model().objects.get(username="agent1")
    open_socket("agent1")
    first = poll("the socket recorded", lambda: AgentSocket.objects.filter(user=agent1).first())
    # As the sweep does when this process could not reach the database for the stale interval.
    AgentSocket.objects.filter(pk=first.pk).delete()
    again = poll("the live socket recorded again", lambda: AgentSocket.objects.filter(user=agent1).first())
    assert again.pk != first.pk
    poll("the new row refreshed", lambda: AgentSocket.objects.filter(pk=again.pk, seen_at__gt=again.opened_at).exists())
    sweep()
    assert status(agent1.pk) == "ready"
    assert AgentSocket.objects.filter(user=agent1).count() == 1


def test_the_sweep_dates_her_absence_from_the_dead_socket_s_last_refresh(demo, fast_presence):
    agent3 = get_user_model().objects.get(username="agent3")
    AgentProfile.objects.filter(user=agent3).update(last_seen_at=None)
    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    orphan = presence.socket_opened(user_id=agent3.pk)
    AgentSocket.objects.filter(pk=orphan).update(seen_at=long_ago)
    AgentProfile.objects.filter(user=agent3).update(status_changed_at=long_ago)
    sweep()
    assert not AgentSocket.objects.filter(pk=orphan).exists()
    assert AgentProfile.objects.get(user=agent3).last_seen_at == long_ago
    assert status(agent3.pk) == "offline"  # grace over since her last sign of life
