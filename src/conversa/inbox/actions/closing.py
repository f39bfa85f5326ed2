"""Closing a conversation: by its agent (or a supervisor) with a disposition, or by the system —
one `close_by_system` for out of hours, a menu's closing option, housekeeping and the admin. Either
way an agent who had the conversation is offered waiting ones (the hand-out step)."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser
from conversa.campaigns.models import Disposition, DispositionOption
from conversa.contacts.fields import clean_values
from conversa.core.errors import InvalidInput
from conversa.inbox import audit
from conversa.inbox.actions.assignment import hand_out_on_commit
from conversa.inbox.actions.common import owned_conversation, queue_outbound
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.inbox.window import is_window_open
from conversa.realtime import event_types, groups

OPEN_STATUSES = (Conversation.Status.MENU, Conversation.Status.NEW, Conversation.Status.ATTENDED)
# What housekeeping may close: conversations in an inbox (the menu has its own timeout).
STALE_STATUSES = {Conversation.Status.NEW, Conversation.Status.ATTENDED}


def _idle_since(cutoff: datetime.datetime) -> Q:
    return Q(last_message_at__lt=cutoff) | Q(last_message_at__isnull=True, created_at__lt=cutoff)


def close_by_system(*, conversation_id: int, reason: str, actor: AnyUser | None = None,
                    statuses: Collection[str] = OPEN_STATUSES, idle_before: datetime.datetime | None = None,
                    hand_out: bool = True, **details: Any) -> Conversation | None:
    """Close a conversation nobody closed by hand. One conditional UPDATE: only while it is in one
    of `statuses` (and, with `idle_before`, has had no message since), so a conversation that moved
    on meanwhile is left alone (None). Audited with the reason, announced, and its agent (if any) is
    offered waiting conversations after the commit (`hand_out=False`: the caller does it once)."""
    with transaction.atomic():
        candidates = Conversation.objects.filter(pk=conversation_id, status__in=list(statuses))
        if idle_before is not None:
            candidates = candidates.filter(_idle_since(idle_before))
        done = candidates.update(status=Conversation.Status.CLOSED, closed_at=timezone.now(),
                                 closed_by_system=True, menu=None, unread_count=0)
        if not done:
            return None
        conversation = Conversation.objects.select_related("contact", "line__provider").get(pk=conversation_id)
        agent_id = conversation.agent_id
        audit.record(kind=AuditEntry.Kind.CLOSED, actor=actor, conversation=conversation, reason=reason,
                     **details)
        publish_conversation(event_types.CONVERSATION_CLOSED, conversation,
                             *([groups.agent_group(agent_id)] if agent_id else []))
        if agent_id and hand_out:
            hand_out_on_commit(agent_id=agent_id)
    return conversation


def close_stale_conversations(*, older_than: datetime.timedelta, statuses: list[str],
                              actor: User | None = None, only_ids: list[int] | None = None,
                              expired_only: bool = False, batch_size: int = 200) -> int:
    """Close (by the system) open conversations with no message for `older_than`.

    For the backlog a contact center accumulates: abandoned chats in the general inbox, or ones an
    agent left open. Each conversation closes with its own conditional update, so one that gets a
    new message meanwhile is left alone; work goes in small transactions, each handing waiting
    conversations to the agents it freed. `expired_only`: just the expired ones (inbox.actions.expiry)."""
    if not statuses or not set(statuses) <= STALE_STATUSES:
        raise InvalidInput(_("statuses must be among: %(allowed)s.")
                           % {"allowed": ", ".join(sorted(STALE_STATUSES))}, field="statuses")
    cutoff = timezone.now() - older_than
    candidates = Conversation.objects.filter(_idle_since(cutoff), status__in=statuses)
    if only_ids is not None:
        candidates = candidates.filter(pk__in=only_ids)
    if expired_only:
        candidates = candidates.filter(expired=True)
    ids = list(candidates.order_by("pk").values_list("pk", flat=True))
    hours = round(older_than.total_seconds() / 3600, 1)
    closed = 0
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            freed: set[int] = set()
            for conversation_id in ids[start:start + batch_size]:
                conversation = close_by_system(conversation_id=conversation_id, reason="stale", actor=actor,
                                               statuses=statuses, idle_before=cutoff, hand_out=False,
                                               older_than_hours=hours, **({"expired": True} if expired_only else {}))
                if conversation is None:
                    continue
                closed += 1
                if conversation.agent_id:
                    freed.add(conversation.agent_id)
            for agent_id in sorted(freed):
                hand_out_on_commit(agent_id=agent_id)
    return closed


# --------------------------------------------------------------------------- by the agent
def _clean_form(option: DispositionOption, answers: dict[str, Any] | None) -> dict[str, Any]:
    """The answers to a management option's form (other kinds have none)."""
    if option.kind != DispositionOption.Kind.MANAGEMENT:
        return {}
    cleaned, problems = clean_values(option.form_fields, answers or {}, max_text=2000)
    if not problems:
        return cleaned
    unknown = sorted(p.name for p in problems if p.problem == "unknown")
    first = problems[0]
    if first.problem == "required":
        raise InvalidInput(_("'%(field)s' is required for this disposition.") % {"field": first.label},
                           field=first.name)
    if first.problem == "invalid":
        raise InvalidInput(_("'%(field)s': invalid %(kind)s (%(error)s).")
                           % {"field": first.label, "kind": first.kind, "error": first.detail}, field=first.name)
    raise InvalidInput(_("Unknown form field(s): %(fields)s.") % {"fields": ", ".join(unknown)}, field="form")


def close(*, conversation_id: int, user: User, option_id: int, notes: str = "", sub_option: str = "",
          form: dict[str, Any] | None = None, follow_up_at: datetime.datetime | None = None) -> Disposition:
    """The agent (or a supervisor) closes with a disposition of the campaign, answering its form."""
    with transaction.atomic():
        conversation = owned_conversation(conversation_id=conversation_id, user=user, allow_supervisor=True)
        option = DispositionOption.objects.filter(pk=option_id, campaign=conversation.campaign, active=True).first()
        if option is None:
            raise InvalidInput(_("Choose one of this campaign's dispositions."),
                               field="disposition")
        if option.sub_options and sub_option and sub_option not in option.sub_options:
            raise InvalidInput(_("The sub-disposition must be one of: %(choices)s.")
                               % {"choices": ", ".join(option.sub_options)}, field="sub_option")
        if option.kind == DispositionOption.Kind.SCHEDULE:
            if follow_up_at is None:
                raise InvalidInput(_("This disposition schedules a follow-up: choose its date and time."),
                                   field="follow_up_at")
            if follow_up_at <= timezone.now():
                raise InvalidInput(_("The follow-up date must be in the future."), field="follow_up_at")
        answers = _clean_form(option, form)
        now = timezone.now()
        disposition = Disposition.objects.create(
            contact=conversation.contact, campaign=conversation.campaign, option=option, sub_option=sub_option,
            agent=conversation.agent or user, notes=notes or "", form_answers=answers,
            follow_up_at=follow_up_at if option.kind == DispositionOption.Kind.SCHEDULE else None,
            conversation=conversation,
        )
        if conversation.line.goodbye_message and is_window_open(conversation):
            queue_outbound(conversation=conversation, sender=None, kind=Message.Kind.TEXT,
                           body=conversation.line.goodbye_message)
        closing_agent = conversation.agent_id
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = now
        conversation.unread_count = 0
        conversation.save(update_fields=["status", "closed_at", "unread_count"])
        audit.record(kind=AuditEntry.Kind.CLOSED, actor=user, conversation=conversation,
                     disposition=disposition.pk, option=option.name)
        publish_conversation(event_types.CONVERSATION_CLOSED, conversation,
                             *([groups.agent_group(closing_agent)] if closing_agent else []))
        if closing_agent:
            hand_out_on_commit(agent_id=closing_agent)
    return disposition
