"""The worker's sweeps run every few seconds: on PostgreSQL, with a realistic number of messages,
each of their queries reads a small partial index, never the message table."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversa.inbox.models import Conversation, Message
from conversa.inbox.sweeps import requeue_media_downloads, requeue_overdue_messages
from conversa.whatsapp.models import Line

MESSAGES = 20_000


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")


def test_sweep_queries_read_partial_indexes(demo: dict[str, Any]) -> None:
    line = Line.objects.get(number="+15550100001")
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000009",
                                               status=Conversation.Status.CLOSED)
    now = timezone.now()

    def message(n: int) -> Message:
        if n % 2:
            return Message(conversation=conversation, line=line, direction="out", status="delivered",
                           provider_message_id=f"wamid.{n}", next_attempt_at=now, status_changed_at=now)
        return Message(conversation=conversation, line=line, direction="in", status="received",
                       provider_message_id=f"wamid.{n}", media="media/x.jpg" if n % 10 == 0 else "")

    Message.objects.bulk_create(message(n) for n in range(MESSAGES))
    Message.objects.bulk_create([
        *(Message(conversation=conversation, line=line, direction="out", status="queued", next_attempt_at=now)
          for _ in range(5)),
        *(Message(conversation=conversation, line=line, direction="out", status="unconfirmed",
                  status_changed_at=now) for _ in range(5)),
        *(Message(conversation=conversation, line=line, direction="in", status="received",
                  media_provider_id=f"media-{n}") for n in range(5)),
    ])
    with connection.cursor() as cursor:  # a history: one message a minute until an hour ago
        cursor.execute("UPDATE inbox_message SET created_at = now() - interval '1 hour' - id * interval '1 minute'")
        cursor.execute("VACUUM ANALYZE inbox_message")
    with CaptureQueriesContext(connection) as ctx:
        requeue_overdue_messages()
        requeue_media_downloads()
    selects = [q["sql"] for q in ctx.captured_queries
               if q["sql"].startswith('SELECT "inbox_message"."id"') and "FOR UPDATE" not in q["sql"]]
    assert len(selects) == 4  # claims expired, resends due, overdue sends, media to download
    expected = ["msg_send_pending_idx", "msg_unconfirmed_idx", "msg_send_pending_idx", "msg_media_pending_idx"]
    for sql, index in zip(selects, expected, strict=True):
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert index in plan, plan
        assert "Seq Scan on inbox_message" not in plan, plan
