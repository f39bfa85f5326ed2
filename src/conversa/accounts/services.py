"""Agent presence."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.models import AgentProfile
from conversa.core.errors import InvalidInput
from conversa.realtime import event_types, groups
from conversa.realtime.services import publish

# Called after the commit with the id of an agent who became ready: the inbox (above this layer)
# hands her waiting conversations; it registers itself in AppConfig.ready().
_ready_handlers: list[Callable[[int], None]] = []


def register_ready_handler(*, handler: Callable[[int], None]) -> None:
    if handler not in _ready_handlers:
        _ready_handlers.append(handler)


def _agent_ready(agent_id: int) -> None:
    for handler in _ready_handlers:
        handler(agent_id)


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
        publish(event_types.AGENT_STATUS, {"agent": user.pk, "status": status},
                [groups.SUPERVISORS, groups.agent_group(user.pk), *(groups.campaign_group(c) for c in campaign_ids)])
        if status == AgentProfile.Status.READY:
            transaction.on_commit(lambda: _agent_ready(user.pk))
    return profile
