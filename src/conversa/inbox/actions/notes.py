"""Private notes: written in a conversation's thread for colleagues, never sent to the customer.
A note is its own row (inbox.models.Note), not a Message, so nothing that sends, counts or
reports messages ever sees it; its event is "note.created", which the simulator's stream (only
"message." events) never carries. @mentioned colleagues are notified on their personal group."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from conversa.accounts.selectors import display_name
from conversa.core.errors import InvalidInput
from conversa.inbox.events import audience, conversation_payload
from conversa.inbox.models import Note
from conversa.inbox.selectors import get_visible_conversation
from conversa.inbox.selectors_notes import colleagues_of, note_payload
from conversa.realtime import event_types, groups
from conversa.realtime.services import publish

NOTE_MAX_CHARS = 4000
# "@laura", "@m.perez": a username after an @ that does not follow a word character (no e-mails).
_MENTION = re.compile(r"(?<![\w@])@([\w.@+-]+)")


def mentioned_usernames(text: str) -> set[str]:
    """Lower-cased usernames written as @mentions; a trailing full stop or comma is punctuation."""
    return {m.group(1).rstrip(".,;:!?-").lower() for m in _MENTION.finditer(text)}


def add_note(*, conversation_id: int, author: User, body: str) -> Note:
    """Write a private note in a conversation the author may see; notify the colleagues it
    @mentions (agents and supervisors of its campaign; other @words stay plain text)."""
    text = (body or "").strip()
    if not text:
        raise InvalidInput(_("Write the note first."), field="body")
    if len(text) > NOTE_MAX_CHARS:
        raise InvalidInput(_("The note is too long (at most %(max)d characters).") % {"max": NOTE_MAX_CHARS},
                           field="body")
    with transaction.atomic():
        conversation = get_visible_conversation(author, conversation_id)
        wanted = mentioned_usernames(text)
        mentioned = [u for u in colleagues_of(conversation) if u.username.lower() in wanted and u.pk != author.pk]
        note = Note.objects.create(conversation=conversation, author=author, body=text)
        if mentioned:
            note.mentions.set(mentioned)
        payload = note_payload(note, author_name=display_name(author), mentions=[u.pk for u in mentioned])
        # Whoever sees the conversation now (as for its messages, but never its line's simulator),
        # plus each mentioned colleague's personal group.
        targets = [*audience(conversation), *(groups.agent_group(u.pk) for u in mentioned)]
        publish(event_types.NOTE_CREATED, {"conversation": conversation_payload(conversation), "note": payload},
                targets)
    return note
