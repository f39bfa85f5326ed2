from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_sqlite_functions(*, connection: Any, **kwargs: Any) -> None:
    """The median aggregate the reports use (PostgreSQL has percentile_cont; SQLite has none)."""
    if connection.vendor == "sqlite":
        from conversa.reports.aggregates import SQLITE_MEDIAN, SqliteMedian

        connection.connection.create_aggregate(SQLITE_MEDIAN, 1, SqliteMedian)


class ReportsConfig(AppConfig):
    name = "conversa.reports"
    label = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.core.worker import register_sweep
        from conversa.reports.rollups import sweep_rollups

        register_sweep(name="report_rollups", job=sweep_rollups)
        connection_created.connect(_register_sqlite_functions, dispatch_uid="reports_sqlite_functions")
