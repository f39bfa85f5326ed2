"""The console's search and history: conversations found by name, phone or text, more of the
Closed tab (keyset pages), and the customer's previous conversations with their read-only
transcript. Reads in inbox.selectors_search."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from conversa.inbox import selectors
from conversa.inbox.keyset import cursor_of, decode_cursor
from conversa.inbox.selectors_notes import thread_notes
from conversa.inbox.selectors_search import (
    SEARCH_RESULTS,
    closed_conversations_values,
    previous_conversation,
    previous_conversations,
    search_conversations,
)
from conversa.web.thread_markup import thread_rows_html
from conversa.web.views import _user, htmx_read
from conversa.web.views_lists import closed_rows, rows_of


@htmx_read
def search(request: HttpRequest) -> HttpResponse:
    """`?q=`: her conversations (open and closed) by the customer's name or phone or a message's text."""
    query = request.GET.get("q", "").strip()
    found = search_conversations(_user(request), text=query) if query else []
    return render(request, "web/partials/search_results.html", {
        "query": query, "rows": rows_of(found), "capped": len(found) >= SEARCH_RESULTS})


@htmx_read
def closed_more(request: HttpRequest) -> HttpResponse:
    """The Closed tab's next page (`?after=`: the cursor the previous page's "More" gave)."""
    page = closed_conversations_values(_user(request), after=decode_cursor(request.GET.get("after"), field="after"))
    return render(request, "web/partials/closed_rows.html", {**closed_rows(page), "after_page": True})


@htmx_read
def history(request: HttpRequest, pk: int) -> HttpResponse:
    """The side panel's History: the customer's earlier conversations, each opening its transcript."""
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    return render(request, "web/partials/history.html", {
        "c": conversation, "previous": previous_conversations(user, conversation)})


@htmx_read
def transcript(request: HttpRequest, pk: int, previous_id: int) -> HttpResponse:
    """An earlier conversation's thread, read only, in the console's dialog: its newest
    THREAD_PAGE_MAX messages with the notes and transfers among them (no links into it)."""
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    previous = previous_conversation(user, conversation, previous_id)
    page = selectors.conversation_messages(previous, limit=selectors.THREAD_PAGE_MAX)
    since = cursor_of(page.rows[0], field="sort_at").at if page.rows and page.cursor is not None else None
    lines: list[Any] = [*selectors.thread_system_lines(previous, since=since, until=None),
                        *thread_notes(previous, since=since, until=None)]
    rows = sorted([*((m, "") for m in page.rows), *((line, "") for line in lines)],
                  key=lambda row: row[0].sort_at)
    return render(request, "web/partials/transcript.html", {
        "previous": previous, "message_rows": thread_rows_html(rows), "truncated": page.cursor is not None})
