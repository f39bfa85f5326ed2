"""Agent presence."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.models import AgentProfile
from conversa.core.errors import InvalidInput
from conversa.realtime import groups
from conversa.realtime.services import publish


def set_status(user: User, status: str) -> AgentProfile:
    """Ready / paused / offline. Becoming ready hands her waiting conversations of
    automatically distributed campaigns."""
    if status not in AgentProfile.Status.values:
        choices = ", ".join(AgentProfile.Status.values)
        raise InvalidInput(_("status must be one of: %(choices)s.") % {"choices": choices}, field="status")
    with transaction.atomic():
        profile, _created = AgentProfile.objects.select_for_update().get_or_create(user=user)
        profile.status = status
        profile.status_changed_at = timezone.now()
        profile.save(update_fields=["status", "status_changed_at"])
        campaign_ids = list(user.campaigns.values_list("pk", flat=True))
        publish("agent.status", {"agent": user.pk, "status": status},
                [groups.SUPERVISORS, groups.agent_group(user.pk), *(groups.campaign_group(c) for c in campaign_ids)])
        if status == AgentProfile.Status.READY:
            from conversa.inbox.services import _distribute_safely

            transaction.on_commit(lambda: _distribute_safely(agent_id=user.pk))
    return profile
