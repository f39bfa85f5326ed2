"""What a websocket may receive, and catch-up from the event log.

Synchronous (ORM) code; the consumers call it through database_sync_to_async. Kept apart from
the consumers so the rules can be read (and tested) without a socket.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max
from django.utils import timezone

from conversa.accounts.selectors import has_whatsapp_skill, is_admin, is_supervisor
from conversa.inbox.selectors import campaigns_for
from conversa.realtime import groups
from conversa.realtime.models import Event, EventTarget
from conversa.whatsapp.models import Line, Provider

AnyUser = AbstractBaseUser | AnonymousUser
Frame = dict[str, Any]


@dataclass(frozen=True)
class Audience:
    """The groups one socket listens to, and the rule for what it may be shown."""

    groups: frozenset[str]
    # Campaigns a supervisor may see; events reaching her only through the global
    # "supervisors" group are kept to these.
    campaign_ids: frozenset[int] = frozenset()
    all_campaigns: bool = False
    # None: every event type; else only types starting with one of these (the sandbox simulator).
    event_prefixes: tuple[str, ...] | None = None

    def admits(self, event_type: str, targets: Iterable[str], payload: dict[str, Any]) -> bool:
        if self.event_prefixes is not None and not event_type.startswith(self.event_prefixes):
            return False
        mine = self.groups.intersection(targets)
        if not mine:
            return False
        if mine - {groups.SUPERVISORS}:
            return True
        # Only the global supervisors group matched: a supervisor sees her campaigns, not all.
        return self.all_campaigns or _campaign_of(payload) in self.campaign_ids


def _campaign_of(payload: dict[str, Any]) -> int | None:
    conversation = payload.get("conversation")
    if isinstance(conversation, dict) and isinstance(conversation.get("campaign"), int):
        return int(conversation["campaign"])
    return None


def agent_audience(user: AnyUser) -> Audience | None:
    """The agent console's audience, or None when the user has no WhatsApp access.

    Computed once per connection: membership changes (added to a campaign, skill removed) apply
    when the socket reconnects.
    """
    supervisor = is_supervisor(user)
    if user.pk is None or not (supervisor or has_whatsapp_skill(user)):
        return None
    campaign_ids = frozenset(campaigns_for(user).values_list("pk", flat=True))
    names = {groups.agent_group(user.pk), *(groups.campaign_group(c) for c in campaign_ids)}
    if supervisor:
        names.add(groups.SUPERVISORS)
    return Audience(groups=frozenset(names), campaign_ids=campaign_ids, all_campaigns=is_admin(user))


class SandboxLineClosed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def sandbox_audience(line_id: int, user: AnyUser) -> Audience:
    """The customer simulator's audience: the messages of one sandbox line.

    Open to anyone, like the sandbox webhook the simulator posts to, unless the sandbox provider
    has a webhook secret (someone hardened it): then a logged-in user is required.
    """
    if not settings.CONVERSA_SANDBOX_SIMULATOR:
        raise SandboxLineClosed(4404)
    line = Line.objects.select_related("provider").filter(pk=line_id,
                                                          provider__kind=Provider.Kind.SANDBOX).first()
    if line is None:
        raise SandboxLineClosed(4404)
    if line.provider.webhook_secret and not user.is_authenticated:
        raise SandboxLineClosed(4401)
    return Audience(groups=frozenset({groups.line_group(line.pk)}), event_prefixes=("message.",))


def current_event_id() -> int:
    return int(Event.objects.aggregate(m=Max("pk"))["m"] or 0)


def event_frame(event_id: int, event_type: str, payload: dict[str, Any]) -> Frame:
    return {"id": event_id, "event": event_type, "payload": payload}


def refetch_frame(reason: str, last_event_id: int) -> Frame:
    return {"event": "refetch", "payload": {"reason": reason, "last_event_id": last_event_id}}


@dataclass
class CatchUp:
    frames: list[Frame]
    refetch: Frame | None = None


def catch_up(audience: Audience, after: int, latest: int) -> CatchUp:
    """Every admitted event with id > `after`, in id order; or a refetch when the log cannot
    tell what the client missed (too old, too many, pruned, or a cursor from another database).

    `latest` is the log's max id read after the socket joined its groups.
    """
    if after < 0 or after > latest:
        return CatchUp([], refetch_frame("unknown last_event_id", latest))
    if after == latest:
        return CatchUp([])
    if after > 0 and not Event.objects.filter(pk__lte=after).exists():
        # The client's cursor is older than everything kept: what followed it may be pruned.
        return CatchUp([], refetch_frame("last_event_id pruned", latest))
    limit: int = settings.CONVERSA_EVENT_REPLAY_MAX_EVENTS
    targeted = EventTarget.objects.filter(group__in=audience.groups, event_id__gt=after).values("event_id")
    events = list(Event.objects.filter(pk__gt=after, pk__in=targeted).order_by("pk")[: limit + 1])
    if not events:
        return CatchUp([])
    if len(events) > limit:
        return CatchUp([], refetch_frame("too many missed events", latest))
    max_age = datetime.timedelta(seconds=settings.CONVERSA_EVENT_REPLAY_MAX_AGE)
    if events[0].created_at < timezone.now() - max_age:
        return CatchUp([], refetch_frame("last_event_id too old", latest))
    targets: dict[int, set[str]] = {}
    for event_id, group in EventTarget.objects.filter(event_id__in=[e.pk for e in events]).values_list(
            "event_id", "group"):
        targets.setdefault(event_id, set()).add(group)
    return CatchUp([
        event_frame(e.pk, e.type, e.payload) for e in events
        if audience.admits(e.type, targets.get(e.pk, ()), e.payload)
    ])
