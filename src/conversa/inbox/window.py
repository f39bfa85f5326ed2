"""Meta's 24-hour customer-service window."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone

from conversa.inbox.models import Conversation


def window_expires_at(conversation: Conversation) -> datetime.datetime | None:
    if conversation.last_inbound_at is None:
        return None
    return conversation.last_inbound_at + datetime.timedelta(hours=settings.CONVERSA_WINDOW_HOURS)


def is_window_open(conversation: Conversation, *, now: datetime.datetime | None = None) -> bool:
    expires = window_expires_at(conversation)
    return expires is not None and (now or timezone.now()) < expires
