"""The console's private notes: the note box under a thread (loaded with the pane, @mention
suggestions from the campaign's colleagues) and adding a note. Rules in inbox.actions.notes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from conversa.inbox import selectors
from conversa.inbox.actions import notes
from conversa.inbox.selectors_notes import mention_choices
from conversa.web.views import _done, _user, htmx_action, htmx_read


@htmx_read
def note_box(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    return render(request, "web/partials/note_box.html", {
        "c": conversation, "mention_choices": mention_choices(conversation, viewer=user),
        "max_chars": notes.NOTE_MAX_CHARS})


@htmx_action
def add_note(request: HttpRequest, pk: int) -> HttpResponse:
    notes.add_note(conversation_id=pk, author=_user(request), body=request.POST.get("body", ""))
    return _done("conversa:thread", "conversa:noteAdded")
