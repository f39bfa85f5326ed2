"""Core's own rows: the task workers' heartbeats and the lease that lets one worker sweep at a time."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One running task worker (`worker_id` is the id it claims task rows with). Beaten every few
    seconds by a thread of the worker; a stale beat means the process died (kill -9, host lost):
    the RUNNING task rows it claimed are re-run, and /healthz/ counts only fresh beats."""

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"worker {self.hostname}:{self.pid} ({self.queues})"


class Lease(models.Model):
    """A named lease held by one worker until `expires_at` (taken and renewed by a conditional
    update, so it works on SQLite and PostgreSQL alike): only its holder runs the sweep."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"lease {self.name} held by {self.holder}"
