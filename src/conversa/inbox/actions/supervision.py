"""A supervisor on an agent's conversation: read-only until she deliberately joins it to write,
which is announced in the thread (the audit entry is its system line) and to everyone watching.
Reassigning is assignment.transfer / return_to_inbox by a supervisor."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from conversa.accounts.selectors import display_name, is_supervisor
from conversa.core.errors import NotAllowed
from conversa.inbox import audit
from conversa.inbox.actions.common import owned_conversation
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation
from conversa.inbox.selectors import supervisor_joined
from conversa.realtime import event_types


def join(*, conversation_id: int, supervisor: User) -> Conversation:
    """Join an agent's open conversation to write in it as supervisor. Joining twice is a no-op."""
    with transaction.atomic():
        # Visibility first (another agent's conversation is a 404, as everywhere), then the role.
        conversation = owned_conversation(conversation_id=conversation_id, user=supervisor, allow_supervisor=True)
        if not is_supervisor(supervisor):
            raise NotAllowed(_("Only supervisors join conversations."))
        if conversation.agent_id is None:
            raise NotAllowed(_("Capture this conversation before acting on it."))
        if conversation.agent_id == supervisor.pk or supervisor_joined(conversation_id=conversation.pk,
                                                                       user=supervisor):
            return conversation
        audit.record(kind=AuditEntry.Kind.JOINED, actor=supervisor, conversation=conversation,
                     actor_name=display_name(supervisor))
        publish_conversation(event_types.CONVERSATION_JOINED, conversation, by=supervisor.pk,
                             by_name=display_name(supervisor))
    return conversation
