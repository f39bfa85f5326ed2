"""Timestamps read from PostgreSQL by psycopg's compiled loader (decisions #82).

Django registers its own `timestamptz` loader on every PostgreSQL connection (to stamp the
connection's time zone on each value), a subclass of psycopg's pure-Python loader: every
timestamp of every row was parsed by a regular expression in Python — the largest single cost of
reading a page of 100 conversations (three timestamps a row), ahead of building the rows. This
loader gives the same value, parsed by the fastest loader psycopg has (the C one of
psycopg-binary), then stamped with the zone as Django's is.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import adapters, postgres
from psycopg.abc import Loader as LoaderProtocol
from psycopg.adapt import Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID = postgres.types["timestamptz"].oid
# psycopg's own registry holds its fastest implementation (compiled when psycopg-binary is there).
_found = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
assert _found is not None  # psycopg always has one
_BestLoader: type[LoaderProtocol] = _found


class _CompiledTzLoader(Loader):
    # What Django's cursor factory compares with the connection's zone (create_cursor): the same,
    # so it keeps this loader rather than registering its own again.
    timezone: datetime.tzinfo | None = None

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._parse = _BestLoader(oid, context).load

    def load(self, data: Any) -> datetime.datetime:
        return self._parse(data).replace(tzinfo=self.timezone)


def use_compiled_timestamp_loader(*, connection: BaseDatabaseWrapper) -> None:
    """On a new PostgreSQL connection of Django's: timestamps through `_CompiledTzLoader`."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return
    adapters_map = connection.connection.adapters
    current = adapters_map.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if current is not None and issubclass(current, _CompiledTzLoader) and current.timezone == connection.timezone:
        return  # a pooled connection, set up when it was first lent
    adapters_map.register_loader(TIMESTAMPTZ_OID, _loader_for(connection.timezone))


@functools.cache
def _loader_for(zone: datetime.tzinfo | None) -> type[_CompiledTzLoader]:
    return type("CompiledTzLoader", (_CompiledTzLoader,), {"timezone": zone})
