from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "conversa.reports"
    label = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversa.core.worker import register_sweep
        from conversa.reports.rollups import sweep_rollups

        register_sweep(name="report_rollups", job=sweep_rollups)
