"""Timestamps from PostgreSQL through psycopg's compiled loader (core.pgtypes, decisions #82): the
same values Django's own loader gives — the instant to the microsecond, in the connection's zone —
and Django keeps the loader rather than registering its own on each cursor."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.db import connection
from psycopg.pq import Format

from conversa.core.pgtypes import TIMESTAMPTZ_OID, _CompiledTzLoader


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")


@pytest.mark.django_db
def test_timestamps_read_back_exactly_through_the_compiled_loader(postgresql: None) -> None:
    buenos_aires = zoneinfo.ZoneInfo("America/Argentina/Buenos_Aires")
    kolkata = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    written = [datetime.datetime(2026, 11, 26, 17, 5, 9, 123456, tzinfo=buenos_aires),
               datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC),
               datetime.datetime(2026, 3, 1, 0, 0, 0, 10, tzinfo=kolkata)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [written])
        read = [row[0] for row in cursor.fetchall()]
        loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert issubclass(loader, _CompiledTzLoader)  # kept by Django's cursor factory
    assert read == written  # the same instants
    assert all(value.tzinfo is connection.timezone for value in read)  # in the connection's zone, as Django's
    assert read[0].microsecond == 123456 and read[2].microsecond == 10
