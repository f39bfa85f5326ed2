"""Time each agent spent in each status (accounts.StatusPeriod), clipped to the report's range:
Ready, Paused productive / not productive (and by reason), Offline is what is left."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from conversa.accounts.models import AgentProfile, StatusPeriod
from conversa.campaigns.models import Campaign


@dataclass
class AgentStatusTime:
    agent_id: int
    name: str
    ready: float = 0.0
    paused_productive: float = 0.0
    paused_other: float = 0.0
    by_reason: dict[str, float] = field(default_factory=dict)


def status_time(campaigns: QuerySet[Campaign], *, start: datetime, end: datetime,
                agent_id: int | None = None) -> list[AgentStatusTime]:
    """Seconds per agent of the campaigns in [start, end), name order; periods still open count
    up to now."""
    agents = (Campaign.agents.through.objects.filter(campaign_id__in=campaigns.values("pk"))
              .values_list("user_id", flat=True))
    periods = (StatusPeriod.objects.filter(user_id__in=agents, started_at__lt=end)
               .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
               .exclude(status=AgentProfile.Status.OFFLINE)
               .select_related("user").order_by("user_id", "started_at"))
    if agent_id is not None:
        periods = periods.filter(user_id=agent_id)
    now = timezone.now()
    rows: dict[int, AgentStatusTime] = {}
    by_reason: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for period in periods[:50000]:
        seconds = (min(period.ended_at or now, end) - max(period.started_at, start)).total_seconds()
        if seconds <= 0:
            continue
        user = period.user
        row = rows.setdefault(user.pk, AgentStatusTime(user.pk, user.get_full_name().strip() or user.username))
        if period.status == AgentProfile.Status.READY:
            row.ready += seconds
        elif period.productive:
            row.paused_productive += seconds
        else:
            row.paused_other += seconds
        if period.status == AgentProfile.Status.PAUSED:
            by_reason[user.pk][period.pause_name or "—"] += seconds
    for pk, reasons in by_reason.items():
        rows[pk].by_reason = dict(sorted(reasons.items()))
    return sorted(rows.values(), key=lambda r: r.name.lower())
