"""`manage.py close_stale_conversations --days 7 --status new,attended [--expired]`: housekeeping for old
chats (`--expired`: only those whose 24-hour window closed unanswered)."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from conversa.core.errors import DomainError
from conversa.inbox.actions.closing import close_stale_conversations


class Command(BaseCommand):
    help = "Close (by the system) open conversations with no message for N days."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=float, required=True, help="Idle for at least this many days.")
        parser.add_argument("--status", default="new,attended",
                            help="Which open conversations: new (general inbox), attended, or both.")
        parser.add_argument("--expired", action="store_true",
                            help="Only expired ones (their 24-hour window closed unanswered).")

    def handle(self, *args: Any, days: float, status: str, expired: bool = False, **options: Any) -> None:
        if days <= 0:
            raise CommandError("--days must be positive.")
        try:
            closed = close_stale_conversations(older_than=datetime.timedelta(days=days),
                                               statuses=[s.strip() for s in status.split(",") if s.strip()],
                                               expired_only=expired)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Closed {closed} conversation(s) idle for {days:g}+ day(s)."))
