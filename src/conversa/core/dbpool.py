"""How soon a process's PostgreSQL connection pool reconnects once the server is back.

psycopg_pool retries a failed connection attempt after 1 s, then 2, 4, 8… (each missing
connection on its own schedule). After an outage of fifteen seconds a process could go on
answering 503 for as long again, because the attempt it waits for was asleep, although the server
was up (CI caught a webhook refused after the intake had already stored one). A missing
connection is retried at a steady, short interval instead: a refused connect costs next to nothing,
and a process is whole again within that interval of the server's return.
"""

from __future__ import annotations

from psycopg_pool.base import AttemptWithBackoff


def retry_connections_steadily(*, every: float) -> None:
    """Every failed attempt is retried `every` seconds later (psycopg_pool has no option for it)."""
    AttemptWithBackoff.INITIAL_DELAY = every
    AttemptWithBackoff.DELAY_BACKOFF = 1.0
