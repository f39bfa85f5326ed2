"""Reads: which campaigns a user may work in (every API, page and websocket goes through this)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from conversa.accounts.selectors import AnyUser, has_whatsapp_skill, is_admin, is_supervisor
from conversa.campaigns.models import Campaign


def campaigns_for(user: AnyUser) -> QuerySet[Campaign]:
    """Campaigns whose WhatsApp work the user may see."""
    if is_admin(user):
        return Campaign.objects.filter(active=True)
    if is_supervisor(user):
        return Campaign.objects.filter(Q(supervisors=user.pk) | Q(agents=user.pk), active=True).distinct()
    if not has_whatsapp_skill(user):
        return Campaign.objects.none()
    return Campaign.objects.filter(agents=user.pk, active=True, whatsapp_enabled=True)
