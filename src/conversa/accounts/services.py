"""Agent status and presence: Ready / Paused (with the admin's reasons) / Offline, each stretch
recorded as a StatusPeriod; offline automatically once her last console socket has been closed (or
its web process died: its row is no longer refreshed) for CONVERSA_PRESENCE_GRACE seconds, and on
logout; opening the console makes an agent who did not choose Offline herself ready."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.models import WHATSAPP_SKILL, AgentProfile, AgentSocket, PauseReason, StatusPeriod
from conversa.core.errors import InvalidInput
from conversa.realtime import event_types, groups
from conversa.realtime.services import publish

# Called after the commit with the id of an agent who became ready: the inbox (above this layer)
# hands her waiting conversations; it registers itself in AppConfig.ready().
_ready_handlers: list[Callable[[int], None]] = []

# Who changed the status (StatusPeriod.source).
BY_AGENT, BY_CONNECTION, BY_LOGOUT = "agent", "connection", "logout"


def register_ready_handler(*, handler: Callable[[int], None]) -> None:
    if handler not in _ready_handlers:
        _ready_handlers.append(handler)


def _agent_ready(agent_id: int) -> None:
    for handler in _ready_handlers:
        handler(agent_id)


def _apply(*, user: User, profile: AgentProfile, status: str, reason: PauseReason | None, source: str) -> None:
    """Inside the caller's transaction, with the profile locked."""
    now = timezone.now()
    changed = profile.status != status or profile.pause_reason_id != (reason.pk if reason else None)
    if changed or not StatusPeriod.objects.filter(user=user, ended_at__isnull=True).exists():
        StatusPeriod.objects.filter(user=user, ended_at__isnull=True).update(ended_at=now)
        StatusPeriod.objects.create(user=user, status=status, pause_reason=reason,
                                    pause_name=reason.name if reason else "",
                                    productive=bool(reason and reason.productive), started_at=now, source=source)
    profile.status = status
    profile.pause_reason = reason
    profile.offline_by_choice = status == AgentProfile.Status.OFFLINE and source == BY_AGENT
    fields = ["status", "pause_reason", "offline_by_choice"]
    if changed:
        profile.status_changed_at = now
        fields.append("status_changed_at")
    profile.save(update_fields=fields)
    if changed or source == BY_AGENT:
        campaign_ids = list(user.campaigns.values_list("pk", flat=True))
        publish(event_types.AGENT_STATUS,
                {"agent": user.pk, "status": status, "pause_reason": reason.name if reason else "",
                 "productive": bool(reason and reason.productive)},
                [groups.SUPERVISORS, groups.agent_group(user.pk), *(groups.campaign_group(c) for c in campaign_ids)])
    if changed and status == AgentProfile.Status.READY:
        transaction.on_commit(lambda: _agent_ready(user.pk))


def set_status(*, user: User, status: str, pause_reason_id: int | None = None,
               source: str = BY_AGENT) -> AgentProfile:
    """Ready / paused (optionally with one of the admin's active pause reasons) / offline. Becoming
    ready hands her waiting conversations of automatically distributed campaigns."""
    if status not in AgentProfile.Status.values:
        choices = ", ".join(AgentProfile.Status.values)
        raise InvalidInput(_("status must be one of: %(choices)s.") % {"choices": choices}, field="status")
    with transaction.atomic():
        reason = None
        if status == AgentProfile.Status.PAUSED and pause_reason_id is not None:
            reason = PauseReason.objects.filter(pk=pause_reason_id, active=True).first()
            if reason is None:
                raise InvalidInput(_("pause_reason must be the id of an active pause reason."), field="pause_reason")
        profile, _created = AgentProfile.objects.select_for_update().get_or_create(user=user)
        _apply(user=user, profile=profile, status=status, reason=reason, source=source)
    # The caller's user may carry the profile as it was read with her (accounts.backends).
    user.profile = profile  # type: ignore[attr-defined]
    return profile


def pause_reasons() -> list[PauseReason]:
    return list(PauseReason.objects.filter(active=True))


# --------------------------------------------------------------------------- presence
def _works_the_console(profile: AgentProfile) -> bool:
    return (profile.role == AgentProfile.Role.AGENT and profile.group is not None
            and profile.group.has_skill(WHATSAPP_SKILL))


def socket_opened(*, user_id: int) -> int | None:
    """A console socket of hers opened (realtime.presence calls this): an agent who is offline
    without having chosen it becomes ready."""
    with transaction.atomic():
        socket = AgentSocket.objects.create(user_id=user_id)
        profile = (AgentProfile.objects.select_for_update(of=("self",)).select_related("user", "group")
                   .filter(user_id=user_id).first())
        if (profile is not None and _works_the_console(profile)
                and profile.status == AgentProfile.Status.OFFLINE and not profile.offline_by_choice):
            _apply(user=profile.user, profile=profile, status=AgentProfile.Status.READY, reason=None,
                   source=BY_CONNECTION)
    return socket.pk


def socket_closed(*, user_id: int, handle: int | None) -> None:
    """A console socket of hers closed: the grace period of her presence starts now."""
    with transaction.atomic():
        if handle is not None:
            AgentSocket.objects.filter(pk=handle).delete()
        AgentProfile.objects.filter(user_id=user_id).update(last_seen_at=timezone.now())


def sockets_refreshed(*, handles: Collection[int]) -> set[int]:
    """The web process holding these sockets says they are still open (its heartbeat, one UPDATE per
    process and interval). Returns the handles whose rows are gone (removed as stale meanwhile)."""
    if AgentSocket.objects.filter(pk__in=handles).update(seen_at=timezone.now()) == len(handles):
        return set()
    return set(handles) - set(AgentSocket.objects.filter(pk__in=handles).values_list("pk", flat=True))


def _forget_stale_sockets(*, now: datetime.datetime) -> int:
    """Delete the socket rows no web process refreshed for the stale interval (left by one that
    died). Her last sign of life becomes her last_seen_at, from which the grace period runs."""
    stale_before = now - datetime.timedelta(seconds=settings.CONVERSA_PRESENCE_STALE_AFTER)
    stale = list(AgentSocket.objects.filter(seen_at__lt=stale_before).values_list("pk", "user_id", "seen_at")[:1000])
    if not stale:
        return 0
    # Filtered again on seen_at: a row refreshed since it was read stays (PostgreSQL re-checks the
    # condition on a row updated concurrently).
    deleted, _deleted = AgentSocket.objects.filter(pk__in=[pk for pk, _u, _s in stale],
                                                    seen_at__lt=stale_before).delete()
    last_seen: dict[int, datetime.datetime] = {}
    for _pk, user_id, seen_at in stale:
        last_seen[user_id] = max(seen_at, last_seen.get(user_id, seen_at))
    for user_id, seen_at in last_seen.items():
        AgentProfile.objects.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=seen_at),
                                    user_id=user_id).update(last_seen_at=seen_at)
    return deleted


def offline_after_disconnect() -> int:
    """Sweep: socket rows of dead web processes are deleted; agents with no console open for the
    grace period become offline. Returns how many became offline."""
    now = timezone.now()
    _forget_stale_sockets(now=now)
    cutoff = now - datetime.timedelta(seconds=settings.CONVERSA_PRESENCE_GRACE)
    gone = (AgentProfile.objects.exclude(status=AgentProfile.Status.OFFLINE)
            .filter(last_seen_at__lt=cutoff, status_changed_at__lt=cutoff)
            .exclude(Exists(AgentSocket.objects.filter(user_id=OuterRef("user_id")))))
    count = 0
    for user_id in list(gone.values_list("user_id", flat=True)[:500]):
        with transaction.atomic():
            profile = (AgentProfile.objects.select_for_update(of=("self",)).select_related("user")
                       .filter(user_id=user_id).first())
            # Checked again under the lock: she may have come back meanwhile.
            if (profile is None or profile.status == AgentProfile.Status.OFFLINE
                    or AgentSocket.objects.filter(user_id=user_id).exists()):
                continue
            _apply(user=profile.user, profile=profile, status=AgentProfile.Status.OFFLINE, reason=None,
                   source=BY_CONNECTION)
            count += 1
    return count


@receiver(user_logged_out, dispatch_uid="conversa.accounts.services.offline_on_logout")
def _offline_on_logout(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    """Logging out of the console makes her offline at once."""
    if user is not None and AgentProfile.objects.filter(user=user).exists():
        set_status(user=user, status=AgentProfile.Status.OFFLINE, source=BY_LOGOUT)
