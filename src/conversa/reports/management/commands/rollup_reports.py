"""`manage.py rollup_reports [--rebuild]`: roll up every settled day, then the settled hours after
them, now (the worker's sweep does it a few seconds at a time); --rebuild counts every day and hour
again, after history was loaded by SQL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversa.reports.rollups import roll_up_settled_days, roll_up_settled_hours


class Command(BaseCommand):
    help = "Roll up the daily message counts the reports read (--rebuild: count every day again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rebuild", action="store_true",
                            help="Forget every rollup and count every day and hour again (after importing history).")

    def handle(self, *args: Any, rebuild: bool, **options: Any) -> None:
        days = roll_up_settled_days(rebuild=rebuild)
        hours = roll_up_settled_hours()
        self.stdout.write(f"Rolled up {days} day(s) and {hours} hour(s).")
