"""Automatic distribution: round robin and least busy, honouring agent status and capacity.

Assignment runs under a lock on the campaign row, so two conversations arriving together cannot
both see the same free slot; when nobody can take a conversation it stays in the general inbox
and is handed out as soon as an agent frees up (closes, transfers out, or becomes ready).
"""

from __future__ import annotations

import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from conversa.accounts.models import WHATSAPP_SKILL, AgentProfile
from conversa.campaigns.models import Campaign
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import Conversation, AuditEntry
from conversa.realtime import event_types, groups


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


def distribute(campaign_id: int) -> list[int]:
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
            AuditEntry.objects.create(kind=AuditEntry.Kind.ASSIGNED, conversation=conversation,
                                             contact=conversation.contact, data={"agent": agent.pk,
                                                                                 "policy": campaign.routing})
            publish_conversation(event_types.CONVERSATION_CAPTURED, conversation, groups.campaign_group(campaign.pk),
                                 assigned_by="distribution")
            assigned.append(conversation_id)
    return assigned


def distribute_for_agent(user: User) -> list[int]:
    """An agent freed up: offer her campaigns' waiting conversations."""
    assigned: list[int] = []
    for campaign_id in user.campaigns.exclude(routing=Campaign.Routing.MANUAL).values_list("pk", flat=True):
        assigned += distribute(campaign_id)
    return assigned
