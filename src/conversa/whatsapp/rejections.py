"""Samples of webhook bodies answered 400/413 (issue 8 item 7): they can never be stored as
events, yet support needs to see what a provider sent. Bounded three ways: the first
SAMPLE_BYTES of the body only, at most MAX_PER_LINE_PER_WINDOW rows per line per WINDOW (the rest
dropped: these requests may be an attacker's), and rows older than RETENTION pruned by the sweep.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from conversa.whatsapp.models import Line, RejectedWebhook

SAMPLE_BYTES = 4096
MAX_PER_LINE_PER_WINDOW = 20
WINDOW = datetime.timedelta(hours=1)
RETENTION = datetime.timedelta(days=7)
MAX_HEADER_CHARS = 512
# Header values that authenticate a request or carry a session: kept by name only.
SECRET_HEADER = re.compile(r"signature|authorization|cookie|token|secret|api[-_]?key|password", re.IGNORECASE)
REDACTED = "[redacted]"


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if SECRET_HEADER.search(name) else str(value)[:MAX_HEADER_CHARS]
            for name, value in headers.items()}


@transaction.atomic
def record_rejected_webhook(*, line: Line, status_code: int, reason: str, headers: Mapping[str, str],
                            body_start: bytes, size: int, verified: bool) -> RejectedWebhook | None:
    """Keep a sample of a rejected callback, or nothing once the line's quota for the window is used."""
    recent = RejectedWebhook.objects.filter(line=line, received_at__gte=timezone.now() - WINDOW)
    if recent.count() >= MAX_PER_LINE_PER_WINDOW:
        return None
    return RejectedWebhook.objects.create(line=line, status_code=status_code, reason=reason[:300],
                                          headers=safe_headers(headers), body_sample=bytes(body_start[:SAMPLE_BYTES]),
                                          size=size, verified=verified)


def prune_rejected_webhooks() -> int:
    """The worker's sweep job: drop samples older than RETENTION."""
    deleted, _ = RejectedWebhook.objects.filter(received_at__lt=timezone.now() - RETENTION).delete()
    return deleted
