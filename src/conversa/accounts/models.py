from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

WHATSAPP_SKILL = "whatsapp"


class AgentGroup(models.Model):
    """A team of agents; its skills say which channels its members may work."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    skills = models.JSONField(_("skills"), default=list, blank=True, help_text=_('e.g. ["whatsapp"]'))

    class Meta:
        verbose_name = _("agent group")
        verbose_name_plural = _("agent groups")

    def __str__(self) -> str:
        return self.name

    def has_skill(self, skill: str) -> bool:
        return skill in (self.skills or [])


class PauseReason(models.Model):
    """Why an agent pauses (lunch, training, back office...), configured by the admin. A productive
    pause counts as work in the reports; the others as time away."""

    name = models.CharField(_("name"), max_length=60, unique=True)
    productive = models.BooleanField(_("productive"), default=False)
    active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("pause reason")
        verbose_name_plural = _("pause reasons")
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    class Role(models.TextChoices):
        AGENT = "agent", _("Agent")
        SUPERVISOR = "supervisor", _("Supervisor")

    class Status(models.TextChoices):
        OFFLINE = "offline", _("Offline")
        READY = "ready", _("Ready")
        PAUSED = "paused", _("Paused")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)
    group = models.ForeignKey(
        AgentGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="members"
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OFFLINE)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    pause_reason = models.ForeignKey(PauseReason, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("pause reason"))
    # She chose Offline herself: opening the console does not make her ready again.
    offline_by_choice = models.BooleanField(default=False)
    # When her last console socket closed (None: she never had one); the sweep makes her offline
    # once this is older than CONVERSA_PRESENCE_GRACE and no socket is open.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When automatic distribution last gave her a conversation: round robin picks the longest idle.
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"), default=10, help_text=_("Most open conversations assigned at once.")
    )

    class Meta:
        verbose_name = _("agent profile")
        verbose_name_plural = _("agent profiles")

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.role})"


class AgentSocket(models.Model):
    """One open console websocket of a user (in any web process): her presence. The process holding
    the socket refreshes seen_at every CONVERSA_PRESENCE_HEARTBEAT_EVERY seconds; a row not refreshed
    for CONVERSA_PRESENCE_STALE_AFTER seconds was left by a process that died (the sweep deletes it)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"socket {self.pk} of user {self.user_id}"


class StatusPeriod(models.Model):
    """A stretch of time an agent spent in one status (and pause reason): the reports' time in
    each status. The open period has no end."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="status_periods")
    status = models.CharField(max_length=20, choices=AgentProfile.Status.choices)
    pause_reason = models.ForeignKey(PauseReason, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Kept with the period: renaming or deleting a reason does not rewrite history.
    pause_name = models.CharField(max_length=60, blank=True)
    productive = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # agent (she chose it), connection (console opened / last socket closed), logout, system.
    source = models.CharField(max_length=20, default="agent")

    class Meta:
        indexes = [models.Index(fields=["user", "started_at"]), models.Index(fields=["started_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.status} from {self.started_at:%Y-%m-%d %H:%M}"
