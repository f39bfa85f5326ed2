from __future__ import annotations

from django.conf import settings
from django.db import models
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
