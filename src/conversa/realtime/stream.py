"""What a websocket may receive, and catch-up from the event log.

Synchronous (ORM) code; the consumers call it through database_sync_to_async. Kept apart from
the consumers so the rules can be read (and tested) without a socket.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max
from django.utils import timezone

from conversa.realtime.models import EventTarget, StreamEvent

Frame = dict[str, Any]
Payload = dict[str, Any]


@dataclass(frozen=True)
class Audience:
    """The groups one socket listens to, and the rule for what it may be shown."""

    groups: frozenset[str]
    # Groups wider than what this socket may see (the global "supervisors" group): an event that
    # reaches the socket only through them is shown when `admit_scoped(payload)` says so.
    scoped_groups: frozenset[str] = frozenset()
    admit_scoped: Callable[[Payload], bool] | None = None
    # None: every event type; else only types starting with one of these (the sandbox simulator).
    event_prefixes: tuple[str, ...] | None = None

    def admits(self, event_type: str, targets: Iterable[str], payload: Payload) -> bool:
        if self.event_prefixes is not None and not event_type.startswith(self.event_prefixes):
            return False
        if not self.scoped_groups:  # the common case, asked once per socket per event: no new sets
            return not self.groups.isdisjoint(targets)
        mine = self.groups.intersection(targets)
        if not mine:
            return False
        if mine - self.scoped_groups:
            return True
        return self.admit_scoped is not None and self.admit_scoped(payload)


class StreamRefused(Exception):
    """The socket may not listen; it is closed with `code` (4401 not authenticated, 4403 no
    access, 4404 no such stream)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class AudienceResolver(Protocol):
    """Who a socket of one stream listens to. Synchronous (may use the ORM); raises StreamRefused."""

    def __call__(self, *, user: AbstractBaseUser | AnonymousUser, route: Mapping[str, Any]) -> Audience: ...


# Streams are defined by the apps above (their AppConfig.ready()): realtime knows no domain.
_resolvers: dict[str, AudienceResolver] = {}


def register_stream(*, name: str, resolver: AudienceResolver) -> None:
    _resolvers[name] = resolver


def audience_for(*, stream: str, user: AbstractBaseUser | AnonymousUser, route: Mapping[str, Any]) -> Audience:
    resolver = _resolvers.get(stream)
    if resolver is None:
        raise StreamRefused(4404)
    return resolver(user=user, route=route)


def current_event_id() -> int:
    return int(StreamEvent.objects.aggregate(m=Max("pk"))["m"] or 0)


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
    if after > 0 and not StreamEvent.objects.filter(pk__lte=after).exists():
        # The client's cursor is older than everything kept: what followed it may be pruned.
        return CatchUp([], refetch_frame("last_event_id pruned", latest))
    limit: int = settings.CONVERSA_EVENT_REPLAY_MAX_EVENTS
    targeted = EventTarget.objects.filter(group__in=audience.groups, event_id__gt=after).values("event_id")
    events = list(StreamEvent.objects.filter(pk__gt=after, pk__in=targeted).order_by("pk")[: limit + 1])
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


def recent_targets(groups: Collection[str], after: int, latest: int) -> dict[str, set[int]]:
    """The ids of the events in (`after`, `latest`] addressed to each of `groups`: the periodic
    re-read that repairs live feeds which lost events while their sockets stayed open. One indexed
    query per process and interval, shared by all its sockets (realtime.fanout.Hub); only ids, since
    normally every one was delivered and nothing more needs loading."""
    by_group: dict[str, set[int]] = {}
    if after >= latest or not groups:
        return by_group
    for event_id, group in EventTarget.objects.filter(group__in=groups, event_id__gt=after,
                                                      event_id__lte=latest).values_list("event_id", "group"):
        by_group.setdefault(group, set()).add(event_id)
    return by_group


@dataclass(frozen=True)
class LoggedEvent:
    type: str
    payload: Payload
    targets: frozenset[str]


def load_events(ids: Collection[int]) -> dict[int, LoggedEvent]:
    """The logged events `ids` with all their audience groups (those still in the log)."""
    targets: dict[int, set[str]] = {}
    for event_id, group in EventTarget.objects.filter(event_id__in=ids).values_list("event_id", "group"):
        targets.setdefault(event_id, set()).add(group)
    return {e.pk: LoggedEvent(e.type, e.payload, frozenset(targets.get(e.pk, ())))
            for e in StreamEvent.objects.filter(pk__in=ids)}
