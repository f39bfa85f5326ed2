"""Waking idle workers when work arrives, instead of polling for it.

On PostgreSQL `notify()` is a `pg_notify`: inside a transaction PostgreSQL delivers it only when
the transaction commits (never for a rolled-back one), so a woken worker always finds the committed
rows. Each worker keeps one extra connection of its own that LISTENs (a `Listener`; not from the
pool, which hands connections out per request). Elsewhere (SQLite, the single-process demo) it is an
in-process wake-up after the commit. Notifications are hints, never the only way: a worker also
polls slowly (CONVERSA_WORKER_INTERVAL), so work whose notification was lost (the listener was
reconnecting, PostgreSQL restarted) waits at most that long.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
from django.db import DatabaseError, connection, transaction
from django_tasks.signals import task_enqueued

logger = logging.getLogger(__name__)
TASKS = "conversa_tasks"
WEBHOOKS = "conversa_webhooks"
# How long one blocking wait lasts at most, so a stopping worker notices within this.
WAIT_SLICE = 0.5

_generation: dict[str, int] = {}
_changed = threading.Condition()


def notify(*, channel: str) -> None:
    """Wake the workers listening on `channel` once the current transaction commits (at once
    outside one). Never raises for a database error: the slow poll finds the work anyway."""
    if connection.vendor == "postgresql":
        try:
            with connection.cursor() as cursor:
                if connection.in_atomic_block or not connection.get_autocommit():
                    cursor.execute("SELECT pg_notify(%s, '')", [channel])
                else:
                    # A transaction of its own holding nothing durable: its commit need not wait for
                    # a WAL flush (a NOTIFY assigns a transaction id, so it would), and the
                    # notification is delivered at commit either way. One flush fewer per webhook
                    # batch; `SET LOCAL` ends with this statement's transaction.
                    cursor.execute("SELECT pg_notify(%s, ''), set_config('synchronous_commit', 'off', true)",
                                   [channel])
        except DatabaseError:
            if connection.in_atomic_block:
                raise  # the transaction is broken anyway: its caller must know
            logger.warning("could not notify %s; the workers' poll will find the work", channel, exc_info=True)
        return
    transaction.on_commit(lambda: _bump(channel))


def _bump(channel: str) -> None:
    with _changed:
        _generation[channel] = _generation.get(channel, 0) + 1
        _changed.notify_all()


def _wake_task_workers(**kwargs: Any) -> None:
    notify(channel=TASKS)


# Every enqueued task (django-tasks-db inserts its row, then sends this in the same transaction).
task_enqueued.connect(_wake_task_workers, dispatch_uid="conversa.core.wake.tasks")


class Listener:
    """What a worker waits on: notifications on `channels`, or `timeout` seconds, whichever first.
    `open()` before the worker first looks for work, so nothing sent in between is missed."""

    def __init__(self, *, channels: list[str]) -> None:
        self.channels = channels
        self._conn: psycopg.Connection[Any] | None = None
        self._seen: dict[str, int] = {}
        # Channels notified since the last `news()`; all of them after a (re)connect, when
        # anything may have been missed.
        self._news: set[str] = set(channels)

    @property
    def uses_postgresql(self) -> bool:
        return connection.vendor == "postgresql"

    def open(self) -> None:
        if not self.uses_postgresql:
            with _changed:
                self._take_local_news()
            return
        if self._conn is not None and not self._conn.closed:
            return
        self._news.update(self.channels)  # what was sent while nobody listened is unknown
        params = connection.settings_dict
        conn = psycopg.connect(dbname=params["NAME"], user=params["USER"] or None,
                               password=params["PASSWORD"] or None, host=params["HOST"] or None,
                               port=params["PORT"] or None, autocommit=True, connect_timeout=5,
                               application_name="conversa worker listener")
        for channel in self.channels:
            conn.execute(f"LISTEN {channel}")  # channel names are our constants, never input
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                logger.debug("closing the listener failed", exc_info=True)
            self._conn = None

    def wait(self, *, timeout: float) -> bool:
        """True when woken by a notification (or a reconnect, after which anything may be waiting),
        False when `timeout` passed. Waits at most WAIT_SLICE at a time (call again to wait more)."""
        timeout = max(0.0, min(timeout, WAIT_SLICE))
        if not self.uses_postgresql:
            with _changed:
                woken = _changed.wait_for(self._local_news, timeout=timeout)
                self._take_local_news()
            return bool(woken)
        try:
            fresh = self._conn is None or self._conn.closed
            self.open()
            if fresh:
                self._news.update(self.channels)
                return True
            assert self._conn is not None
            woken = False
            for notice in self._conn.notifies(timeout=timeout, stop_after=1):
                woken = True
                self._news.add(notice.channel)
            if woken:  # several may have queued up while we worked: one look serves them all
                self._drain()
            return woken
        except psycopg.Error as exc:
            self._lost(exc)
            time.sleep(timeout)
            return False

    def news(self) -> set[str]:
        """The channels notified since the last call, without waiting (what `wait` saw included).
        A worker busy with a backlog calls this between batches, so a notification that arrived
        meanwhile (an agent's reply enqueued) is seen before the next batch, not after the backlog."""
        if not self.uses_postgresql:
            with _changed:
                self._take_local_news()
        elif self._conn is not None and not self._conn.closed:
            try:
                self._drain()
            except psycopg.Error as exc:
                self._lost(exc)
        else:
            self._news.update(self.channels)
        news, self._news = self._news, set()
        return news

    def _lost(self, exc: psycopg.Error) -> None:
        logger.warning("worker listener lost (%s); polling until it reconnects", exc)
        self.close()
        self._news.update(self.channels)  # what was sent meanwhile is unknown

    def _drain(self) -> None:
        assert self._conn is not None
        for notice in self._conn.notifies(timeout=0.0):
            self._news.add(notice.channel)

    def _take_local_news(self) -> None:
        self._news.update(c for c in self.channels if _generation.get(c, 0) != self._seen.get(c, 0))
        self._seen = {c: _generation.get(c, 0) for c in self.channels}

    def _local_news(self) -> bool:
        return any(_generation.get(c, 0) != self._seen.get(c, 0) for c in self.channels)
