"""The console's thread, page by page: the newest messages first shown, "Load earlier messages"
for the ones before, and refreshes that re-read exactly what the agent has on screen."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from django.urls import reverse

from conversa.inbox import selectors
from conversa.inbox.keyset import cursor_of, decode_cursor
from conversa.inbox.models import Conversation


def thread_context(conversation: Conversation, query: QueryDict | None = None) -> dict[str, Any]:
    """`?before=` → the page before that cursor (prepended by the page); `?from=` → every message
    from the oldest shown to the newest (a live refresh keeps earlier pages the agent loaded);
    neither → the newest page. Bad cursors are a 400 naming the parameter."""
    query = query or QueryDict()
    before = decode_cursor(query.get("before"), field="before")
    start = decode_cursor(query.get("from"), field="from")
    if start is not None and before is None:
        page = selectors.conversation_messages_from(conversation, start=start)
    else:
        page = selectors.conversation_messages(conversation, before=before)
    earlier_url = ""
    if page.cursor is not None:
        earlier_url = f"{reverse('console-messages', args=[conversation.pk])}?before={page.cursor.encode()}"
    return {
        "c": conversation,
        "messages": page.rows,
        "start_cursor": cursor_of(page.rows[0], field="sort_at").encode() if page.rows else "",
        "earlier_url": earlier_url,
        "earlier_page": before is not None,
    }
