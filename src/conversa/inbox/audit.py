"""The audit trail: the one place that writes AuditEntry rows. Actions call `record` inside their
transaction, so an entry exists exactly when the change it describes committed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from conversa.accounts.selectors import AnyUser
from conversa.contacts.models import Contact
from conversa.inbox.models import AuditEntry, Conversation


def record(*, kind: str, actor: AnyUser | None = None, conversation: Conversation | None = None,
           contact: Contact | None = None, **data: Any) -> AuditEntry:
    """One entry; the contact defaults to the conversation's, the actor is kept only when it is a
    signed-in user (the system, or an anonymous request, acts as nobody)."""
    return AuditEntry.objects.create(
        kind=kind, actor=actor if isinstance(actor, User) else None,
        conversation=conversation, contact=contact or (conversation.contact if conversation else None),
        data=data,
    )
