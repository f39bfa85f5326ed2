"""Reads for private notes: who may be @mentioned, the notes between two moments of a thread (the
console merges them with the messages, like the transfers' system lines), and their payload."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q

from conversa.accounts.selectors import display_name
from conversa.inbox.models import Conversation, Note

THREAD_NOTES_MAX = 500


def colleagues_of(conversation: Conversation) -> list[User]:
    """Who may be @mentioned in a note: the active agents and supervisors of its campaign."""
    campaign_id = conversation.campaign_id
    return list(User.objects.filter(Q(campaigns=campaign_id) | Q(supervised_campaigns=campaign_id), is_active=True)
                .distinct().order_by("username"))


def mention_choices(conversation: Conversation, *, viewer: User) -> list[dict[str, str]]:
    """The note form's @mention suggestions: every colleague but the viewer."""
    return [{"username": u.username, "name": display_name(u)} for u in colleagues_of(conversation)
            if u.pk != viewer.pk]


def note_payload(note: Note, *, author_name: str, mentions: list[int]) -> dict[str, Any]:
    return {"id": note.pk, "conversation": note.conversation_id, "author": note.author_id,
            "author_name": author_name, "body": note.body, "mentions": mentions,
            "created_at": note.created_at.isoformat()}


@dataclass(frozen=True)
class NoteLine:
    """A note as a line of the thread (templates tell it by `note_body`)."""

    pk: int
    sort_at: datetime.datetime
    note_body: str
    author_name: str


def thread_notes(conversation: Conversation, *, since: datetime.datetime | None,
                 until: datetime.datetime | None) -> list[NoteLine]:
    notes = Note.objects.filter(conversation=conversation.pk).select_related("author").order_by("created_at", "id")
    if since is not None:
        notes = notes.filter(created_at__gte=since)
    if until is not None:
        notes = notes.filter(created_at__lt=until)
    return [NoteLine(pk=n.pk, sort_at=n.created_at, note_body=n.body, author_name=display_name(n.author))
            for n in notes[:THREAD_NOTES_MAX]]


def conversation_notes(conversation: Conversation) -> list[Note]:
    """Every note of a conversation, oldest first (the API)."""
    return list(Note.objects.filter(conversation=conversation.pk).select_related("author")
                .prefetch_related("mentions").order_by("created_at", "id"))
