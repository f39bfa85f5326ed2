"""Aggregates the reports compute in the database."""

from __future__ import annotations

import statistics
from typing import Any

from django.db.models import Aggregate


class Median(Aggregate):
    """The median of a column (for an even count, the mean of the two middle values, as
    statistics.median): PostgreSQL's percentile_cont; on SQLite a Python aggregate the reports app
    registers on every connection (reports.apps)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        clone = self.copy()
        clone.function, clone.template = SQLITE_MEDIAN, "%(function)s(%(expressions)s)"
        return clone.as_sql(compiler, connection, **extra_context)


SQLITE_MEDIAN = "CONVERSA_MEDIAN"


class SqliteMedian:
    """SQLite's side of Median (sqlite3.Connection.create_aggregate)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None
