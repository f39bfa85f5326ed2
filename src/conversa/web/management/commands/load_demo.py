from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversa.web.demo import load_demo


class Command(BaseCommand):
    help = "Load the demo users, campaigns, sandbox lines and templates (safe to run twice)."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = load_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {counts}. Users admin, supervisor, "
                                             "agent1..agent4; password 'demo' (demo only)."))
