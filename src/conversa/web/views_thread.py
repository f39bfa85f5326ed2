"""The console's thread, page by page: the newest messages first shown, "Load earlier messages"
for the ones before, and refreshes that re-read exactly what the agent has on screen."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from conversa.inbox import selectors
from conversa.inbox.keyset import cursor_of, decode_cursor
from conversa.inbox.models import Conversation, Message
from conversa.inbox.selectors_notes import thread_notes
from conversa.outreach.selectors import reply_job_for
from conversa.web.thread_markup import thread_rows_html


def _ticks() -> dict[str, SafeString]:
    """An outbound message's delivery ticks by status, with the whitespace the template's former
    if/elif chain left; translated once per page instead of twice per message. The marks are hidden
    from assistive technology, which reads the status in words instead (an aria-label on a plain
    span is not announced); read ticks also differ from delivered ones in shape (a filled badge)."""
    kinds = [("queued", "ticks-queued", _("Queued"), "◷"), ("sent", "ticks-sent", _("Sent"), "✓"),
             ("delivered", "ticks-delivered", _("Delivered"), "✓✓"), ("read", "ticks-read", _("Read"), "✓✓"),
             ("played", "ticks-read", _("Played"), "✓✓"), ("failed", "ticks-failed", _("Failed"), "!"),
             ("unconfirmed", "ticks-queued", _("Not confirmed"), "?")]
    ticks = {}
    for status, css, label, mark in kinds:
        span = format_html('<span class="ticks {}" title="{}"><span aria-hidden="true">{}</span>'
                           '<span class="sr-only">{}</span></span>', css, label, mark, label)
        trailing = "" if status == "unconfirmed" else "\n        "  # the last branch had none
        ticks[status] = format_html("\n        {}" + trailing + "\n      ", span)
    return ticks


def _message_rows(messages: list[Message]) -> list[tuple[Message, str]]:
    ticks = _ticks()
    no_ticks = "\n        \n      "  # an outbound status without ticks (received)
    return [(m, (ticks.get(m.status, no_ticks) if m.direction == Message.Direction.OUTBOUND else "")) for m in messages]


def bulk_context(conversation: Conversation) -> dict[str, Any]:
    """The bulk send this conversation answers (the thread's header names it), if any."""
    return {"bulk_job": reply_job_for(conversation_id=conversation.pk)}


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
    rows: list[Any] = _message_rows(page.rows)
    # Transfers and supervisors joining, between this page's first message (the thread's start on
    # its first page) and the next page's (now, on the newest).
    since = cursor_of(page.rows[0], field="sort_at").at if page.rows and page.cursor is not None else None
    until = cursor_of(page.rows[-1], field="sort_at").at if page.rows and before is not None else None
    lines: list[Any] = [*selectors.thread_system_lines(conversation, since=since, until=until),
                        *thread_notes(conversation, since=since, until=until)]  # private notes, same span
    if lines:
        rows = sorted([*rows, *((line, "") for line in lines)], key=lambda row: row[0].sort_at)
    return {
        "c": conversation,
        "messages": page.rows,
        "message_rows": thread_rows_html(rows),
        "start_cursor": cursor_of(page.rows[0], field="sort_at").encode() if page.rows else "",
        "earlier_url": earlier_url,
        "earlier_page": before is not None,
    }
