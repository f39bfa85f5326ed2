"""Who works on a conversation: capture from the general inbox, transfer, automatic distribution
(round robin and least busy, honouring agent status and capacity), and handing waiting
conversations to an agent who frees up (closes one, transfers one out, becomes ready).

Distribution runs under a lock on the campaign row, so two conversations arriving together cannot
both see the same free slot; when nobody can take a conversation it stays in the general inbox
and is handed out as soon as an agent frees up."""

from __future__ import annotations

import datetime
import logging
import threading
from typing import NamedTuple

from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.models import WHATSAPP_SKILL, AgentProfile
from conversa.accounts.selectors import display_name, has_whatsapp_skill, require_whatsapp_access
from conversa.campaigns.models import Campaign
from conversa.campaigns.selectors import campaigns_for
from conversa.core.errors import Conflict, InvalidInput, NotFound
from conversa.inbox import audit
from conversa.inbox.actions.common import owned_conversation
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation
from conversa.inbox.selectors import may_know, name_for
from conversa.realtime import event_types, groups

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- automatic distribution
def available_agents(campaign: Campaign) -> list[User]:
    """Ready agents of the campaign with the WhatsApp skill and a free slot, best candidate first."""
    agents = (
        campaign.agents.filter(is_active=True, profile__status=AgentProfile.Status.READY)
        .select_related("profile__group")
        .annotate(open_count=Count("conversations", filter=Q(conversations__status=Conversation.Status.ATTENDED)))
    )
    free: list[User] = [a for a in agents if a.profile.group and a.profile.group.has_skill(WHATSAPP_SKILL)
                        and a.open_count < a.profile.capacity]  # type: ignore[attr-defined]
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    if campaign.routing == Campaign.Routing.LEAST_BUSY:
        free.sort(key=lambda a: (a.open_count, a.profile.last_assigned_at or epoch, a.pk))  # type: ignore[attr-defined]
    else:  # round robin: whoever has waited longest since her last assignment
        free.sort(key=lambda a: (a.profile.last_assigned_at or epoch, a.pk))
    return free


def distribute(*, campaign_id: int) -> list[int]:
    """Hand the campaign's waiting conversations (oldest first) to available agents.
    Returns the ids of the conversations assigned. Manual campaigns are left alone."""
    assigned: list[int] = []
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.routing == Campaign.Routing.MANUAL:
            return assigned
        waiting = list(
            Conversation.objects.filter(campaign=campaign, status=Conversation.Status.NEW, agent__isnull=True)
            .order_by("created_at", "id").values_list("pk", flat=True)[:200]
        )
        for conversation_id in waiting:
            candidates = available_agents(campaign)
            if not candidates:
                break
            agent = candidates[0]
            now = timezone.now()
            won = Conversation.objects.filter(
                pk=conversation_id, status=Conversation.Status.NEW, agent__isnull=True
            ).update(agent=agent, status=Conversation.Status.ATTENDED, attended_at=now)
            if not won:  # captured by hand meanwhile
                continue
            AgentProfile.objects.filter(user=agent).update(last_assigned_at=now)
            conversation = Conversation.objects.select_related("contact", "line__provider").get(pk=conversation_id)
            audit.record(kind=AuditEntry.Kind.ASSIGNED, conversation=conversation, agent=agent.pk,
                         policy=campaign.routing)
            publish_conversation(event_types.CONVERSATION_ASSIGNED, conversation, groups.campaign_group(campaign.pk),
                                 assigned_by="distribution")
            assigned.append(conversation_id)
    return assigned


def distribute_for_agent(*, agent_id: int) -> list[int]:
    """An agent freed up: offer her campaigns' waiting conversations."""
    assigned: list[int] = []
    campaign_ids = (Campaign.objects.filter(agents=agent_id).exclude(routing=Campaign.Routing.MANUAL)
                    .values_list("pk", flat=True))
    for campaign_id in campaign_ids:
        assigned += distribute(campaign_id=campaign_id)
    return assigned


def hand_out_now(*, campaign_id: int | None = None, agent_id: int | None = None) -> None:
    """Automatic distribution after a commit; a failure there must not undo what committed."""
    try:
        if campaign_id is not None:
            distribute(campaign_id=campaign_id)
        if agent_id is not None:
            distribute_for_agent(agent_id=agent_id)
    except Exception:
        logger.exception("automatic distribution failed (campaign %s, agent %s)", campaign_id, agent_id)


def hand_out_to_ready_agent(agent_id: int) -> None:
    """accounts.services calls this (registered in InboxConfig.ready()) after an agent became ready."""
    hand_out_now(agent_id=agent_id)


def hand_out_on_commit(*, campaign_id: int | None = None, agent_id: int | None = None) -> None:
    """Distribute the campaign's waiting conversations, or offer them to a freed agent, once the
    current transaction commits. Once per campaign (or agent) and transaction: one hand-out takes
    all that wait, so a webhook batch opening many conversations of a campaign distributes once."""
    connection = transaction.get_connection()
    key = (campaign_id, agent_id)
    planned: dict[tuple[int | None, int | None], _HandOut] = getattr(_local, "planned", {})
    known = planned.get(key)
    # Still registered: not run yet, and not dropped by a savepoint that rolled back.
    if connection.in_atomic_block and known is not None and any(
            entry[1] is known for entry in connection.run_on_commit):
        return
    hand_out = _HandOut(campaign_id=campaign_id, agent_id=agent_id)
    if connection.in_atomic_block:
        _local.planned = {**planned, key: hand_out} if len(planned) < 1000 else {key: hand_out}
    transaction.on_commit(hand_out)


_local = threading.local()


class _HandOut:
    __slots__ = ("agent_id", "campaign_id")

    def __init__(self, *, campaign_id: int | None, agent_id: int | None) -> None:
        self.campaign_id, self.agent_id = campaign_id, agent_id

    def __call__(self) -> None:
        hand_out_now(campaign_id=self.campaign_id, agent_id=self.agent_id)


# --------------------------------------------------------------------------- by hand
def capture(*, conversation_id: int, agent: User) -> Conversation:
    """Take a conversation from the general inbox. Atomic: one conditional UPDATE decides the race."""
    require_whatsapp_access(agent)
    # Of 200 agents pressing Capture at once, all but the first few find it taken: for them one
    # read says why, outside any transaction. Only a conversation still waiting goes to the race,
    # which the UPDATE alone decides.
    found = _capture_state(conversation_id=conversation_id, agent=agent)
    if found is not None and found.status == Conversation.Status.NEW and found.agent_id is None:
        visible = Conversation.objects.filter(pk=conversation_id, campaign__in=campaigns_for(agent))
        with transaction.atomic():
            won = visible.filter(status=Conversation.Status.NEW, agent__isnull=True).update(
                agent=agent, status=Conversation.Status.ATTENDED, attended_at=timezone.now())
            if won:
                # With what the answer shows (the API's ConversationSerializer, the console's pane).
                conversation = Conversation.objects.select_related("campaign", "line", "agent").get(pk=conversation_id)
                audit.record(kind=AuditEntry.Kind.CAPTURED, actor=agent, conversation=conversation)
                publish_conversation(event_types.CONVERSATION_CAPTURED, conversation,
                                     groups.campaign_group(conversation.campaign_id))
                return conversation
        found = _capture_state(conversation_id=conversation_id, agent=agent)  # lost the race: who won it
    if found is None:
        raise NotFound(_("Conversation not found."))
    if found.agent_id == agent.pk and found.status == Conversation.Status.ATTENDED:
        # A double click: already hers.
        return Conversation.objects.select_related("campaign", "line", "agent").get(pk=conversation_id)
    if found.status == Conversation.Status.CLOSED:
        raise Conflict(_("This conversation is already closed."))
    if found.status == Conversation.Status.MENU:
        raise Conflict(_("The customer is still choosing an option of the menu."))
    holder = found.holder
    # The conversation's campaign is one of hers (it is visible), so a holder working on that
    # campaign is someone she may know without asking (may_know's own query is the rare case).
    named = holder is not None and (found.holder_in_campaign or may_know(agent, holder))
    holder_name = display_name(holder) if holder is not None and named else _("another agent")
    raise Conflict(_("Already taken by %(agent)s.") % {"agent": holder_name},
                   extra={"agent": found.agent_id if named else None, "agent_name": holder_name})


class _CaptureState(NamedTuple):
    status: str
    agent_id: int | None
    holder: User | None  # id and names only
    holder_in_campaign: bool


def _capture_state(*, conversation_id: int, agent: User) -> _CaptureState | None:
    """What a capture needs to know about a conversation `agent` may see (None: not found or not
    visible), in one statement: its status and holder, and whether the holder is an agent or
    supervisor of the conversation's campaign. Written as SQL because the same read through the
    ORM (a visibility subquery and two EXISTS annotations) cost 2.3 ms of Python against 0.2 ms
    for a plain read by key, and 199 of 200 agents of a burst make only this read; the visibility
    rule itself is campaigns_for's, compiled by Django (unordered: a supervisor's DISTINCT would
    otherwise select the ordering column too)."""
    try:
        visible_sql, visible_params = campaigns_for(agent).order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return None
    conversation, user = Conversation._meta.db_table, User._meta.db_table
    agents, supervisors = Campaign.agents.through._meta.db_table, Campaign.supervisors.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.status, c.agent_id, u.first_name, u.last_name, u.username, "  # noqa: S608 (names from _meta)
            f"EXISTS (SELECT 1 FROM {agents} a WHERE a.campaign_id = c.campaign_id AND a.user_id = c.agent_id) "
            f"OR EXISTS (SELECT 1 FROM {supervisors} s WHERE s.campaign_id = c.campaign_id "
            f"AND s.user_id = c.agent_id) "
            f"FROM {conversation} c LEFT JOIN {user} u ON u.id = c.agent_id "
            f"WHERE c.id = %s AND c.campaign_id IN ({visible_sql})",
            [conversation_id, *visible_params])
        row = cursor.fetchone()
    if row is None:
        return None
    status, agent_id, first_name, last_name, username, holder_in_campaign = row
    holder = (User(pk=agent_id, first_name=first_name or "", last_name=last_name or "", username=username or "")
              if agent_id is not None else None)
    return _CaptureState(status=status, agent_id=agent_id, holder=holder, holder_in_campaign=bool(holder_in_campaign))


def transfer_targets(*, campaign: Campaign, exclude_agent_id: int | None = None) -> list[dict[str, object]]:
    """Every agent of the campaign, each with whether she may take a transfer now (WhatsApp skill,
    Ready, a free slot) and why not: the dialog shows them all, the action accepts only those."""
    rows = []
    agents = (campaign.agents.filter(is_active=True).select_related("profile__group", "profile__pause_reason")
              .annotate(open_count=Count("conversations", filter=Q(conversations__status=Conversation.Status.ATTENDED)))
              .order_by("first_name", "username"))
    for agent in agents:
        if agent.pk == exclude_agent_id:
            continue
        profile = getattr(agent, "profile", None)
        status = profile.status if profile else AgentProfile.Status.OFFLINE
        why = ""
        if not has_whatsapp_skill(agent):
            why = _("no WhatsApp skill")
        elif status != AgentProfile.Status.READY:
            why = _("not ready")
        elif profile is not None and agent.open_count >= profile.capacity:  # type: ignore[attr-defined]
            why = _("no free slot")
        rows.append({"id": agent.pk, "name": display_name(agent), "status": status,
                     "status_label": AgentProfile.Status(status).label,
                     "pause_reason": profile.pause_reason.name if profile and profile.pause_reason else "",
                     "available": not why, "why": why, "whatsapp": has_whatsapp_skill(agent)})
    return rows


def _announce_transfer(*, conversation: Conversation, user: User, previous: int | None, previous_campaign: int,
                       to_agent: User | None, note: str) -> None:
    """The audit entry (also the thread's system line) and the live event; the agent who lost it
    is offered waiting conversations."""
    to_campaign = conversation.campaign_id if conversation.campaign_id != previous_campaign else None
    audit.record(kind=AuditEntry.Kind.TRANSFERRED, actor=user, conversation=conversation,
                 from_agent=previous, to_agent=to_agent.pk if to_agent else None,
                 actor_name=display_name(user), to_name=display_name(to_agent) if to_agent else "",
                 to_campaign=to_campaign, to_campaign_name=conversation.campaign.name if to_campaign else "",
                 by_supervisor=previous != user.pk, note=note)
    # From an agent: she loses it. From the general inbox (a supervisor assigning it): it leaves
    # every campaign agent's New tab. To a general inbox: it appears in that campaign's New tab.
    targets = [groups.agent_group(previous) if previous else groups.campaign_group(previous_campaign)]
    if to_agent is None or to_campaign:
        targets.append(groups.campaign_group(conversation.campaign_id))
    if previous_campaign != conversation.campaign_id:
        targets.append(groups.campaign_group(previous_campaign))
    publish_conversation(event_types.CONVERSATION_TRANSFERRED, conversation, *targets,
                         from_agent=previous, to_agent=to_agent.pk if to_agent else None,
                         by=user.pk, by_name=display_name(user), note=note,
                         to_name=display_name(to_agent) if to_agent else "")
    if previous:
        hand_out_on_commit(agent_id=previous)


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > 500:
        raise InvalidInput(_("note must be at most 500 characters."), field="note")
    return note


def transfer(*, conversation_id: int, user: User, target_agent_id: int, note: str = "") -> Conversation:
    """Move a conversation to another agent of its campaign who may take it now (WhatsApp skill,
    Ready, a free slot) — from her agent, or by a supervisor (a reassignment) — with an optional
    note shown in the thread."""
    note = _clean_note(note)
    with transaction.atomic():
        conversation = owned_conversation(conversation_id=conversation_id, user=user, allow_supervisor=True)
        target = User.objects.filter(pk=target_agent_id, is_active=True).first()
        if target is None:
            raise InvalidInput(_("agent must be the user id of an agent of this campaign."), field="agent")
        if target.pk == conversation.agent_id:
            raise InvalidInput(_("The conversation is already in that agent's personal inbox."), field="agent")
        if not conversation.campaign.agents.filter(pk=target.pk).exists():
            raise InvalidInput(_("%(agent)s is not an agent of campaign '%(campaign)s'.")
                               % {"agent": name_for(user, target), "campaign": conversation.campaign.name},
                               field="agent")
        if not has_whatsapp_skill(target):
            raise InvalidInput(_("%(agent)s does not have the WhatsApp skill.") % {"agent": name_for(user, target)},
                               field="agent")
        # Locked: two transfers to her last free slot cannot both win.
        profile = AgentProfile.objects.select_for_update().filter(user=target).first()
        if profile is None or profile.status != AgentProfile.Status.READY:
            status = profile.get_status_display() if profile else AgentProfile.Status.OFFLINE.label
            raise InvalidInput(_("%(agent)s is not ready (%(status)s).")
                               % {"agent": name_for(user, target), "status": str(status).lower()}, field="agent")
        if Conversation.objects.filter(agent=target, status=Conversation.Status.ATTENDED).count() >= profile.capacity:
            raise InvalidInput(_("%(agent)s has no free slot.") % {"agent": name_for(user, target)}, field="agent")
        previous = conversation.agent_id
        conversation.agent = target
        conversation.status = Conversation.Status.ATTENDED
        conversation.attended_at = conversation.attended_at or timezone.now()
        conversation.save(update_fields=["agent", "status", "attended_at"])
        _announce_transfer(conversation=conversation, user=user, previous=previous,
                           previous_campaign=conversation.campaign_id, to_agent=target, note=note)
    return conversation


def transfer_campaigns(*, conversation: Conversation) -> list[Campaign]:
    """Campaigns whose general inbox a conversation may be sent to (WhatsApp-enabled, active)."""
    return list(Campaign.objects.filter(active=True, whatsapp_enabled=True).exclude(pk=conversation.campaign_id)
                .order_by("name"))


def return_to_inbox(*, conversation_id: int, user: User, campaign_id: int | None = None,
                    note: str = "") -> Conversation:
    """Put a conversation back in a general inbox ("New"): its own campaign's, or another
    campaign's (WhatsApp-enabled, active). From its agent, or by a supervisor."""
    note = _clean_note(note)
    with transaction.atomic():
        conversation = owned_conversation(conversation_id=conversation_id, user=user, allow_supervisor=True)
        previous_campaign = conversation.campaign_id
        if campaign_id is not None and campaign_id != previous_campaign:
            campaign = Campaign.objects.filter(pk=campaign_id, active=True, whatsapp_enabled=True).first()
            if campaign is None:
                raise InvalidInput(_("campaign must be the id of an active WhatsApp campaign."), field="campaign")
            conversation.campaign = campaign
        elif conversation.agent_id is None:
            raise InvalidInput(_("The conversation is already in the general inbox."), field="campaign")
        previous = conversation.agent_id
        conversation.agent = None
        conversation.status = Conversation.Status.NEW
        conversation.save(update_fields=["agent", "status", "campaign"])
        _announce_transfer(conversation=conversation, user=user, previous=previous,
                           previous_campaign=previous_campaign, to_agent=None, note=note)
        hand_out_on_commit(campaign_id=conversation.campaign_id)
    return conversation
