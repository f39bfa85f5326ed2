"""Template helpers of the supervisor pages (and the console's link to them)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from conversa.accounts.selectors import is_supervisor

register = template.Library()


@register.filter(name="is_supervisor")
def is_supervisor_filter(user: Any) -> bool:
    return bool(user is not None and is_supervisor(user))


@register.filter
def duration(seconds: Any) -> str:
    """Seconds as "45 s", "3 min 20 s", "2 h 05 min"; a dash when unmeasured."""
    if seconds is None or seconds == "":
        return "—"
    total = round(float(seconds))
    if total < 60:
        return _("%(s)d s") % {"s": total}
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}


@register.filter
def percent_of(value: Any, total: Any) -> int:
    """Bar width in percent (0-100) of value against total."""
    try:
        v, t = float(value or 0), float(total or 0)
    except (TypeError, ValueError):
        return 0
    return 0 if t <= 0 else max(0, min(100, round(v * 100 / t)))


@register.filter
def conversation_bars(summary: Any) -> list[tuple[str, int]]:
    """The conversation figures of a CampaignSummary, labelled, for the bar chart."""
    return [
        (_("Started inbound"), summary.conversations_inbound),
        (_("Started outbound"), summary.conversations_outbound),
        (_("Attended"), summary.attended),
        (_("Not attended (still new)"), summary.not_attended),
        (_("Closed"), summary.closed),
        (_("Closed by system"), summary.closed_by_system),
        (_("Expired (window closed unanswered)"), summary.expired),
    ]


@register.filter
def disposition_name(conversation: Any) -> str:
    disposition = getattr(conversation, "disposition", None)  # reverse one-to-one: absent raises
    return disposition.option.name if disposition is not None else ""
