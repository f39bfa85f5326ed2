"""Who may do what: the visibility rules every API and websocket applies."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _

from conversa.accounts.models import WHATSAPP_SKILL, AgentProfile
from conversa.core.errors import NotAllowed

# Read-only checks accept any user object (request.user, scope["user"], ...).
AnyUser = AbstractBaseUser | AnonymousUser


def profile_of(user: AnyUser) -> AgentProfile | None:
    if not user.is_authenticated:
        return None
    try:
        return user.profile  # type: ignore[union-attr, attr-defined]
    except AgentProfile.DoesNotExist:
        return None


def is_admin(user: AnyUser) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_superuser", False))


def is_supervisor(user: AnyUser) -> bool:
    profile = profile_of(user)
    return is_admin(user) or (profile is not None and profile.role == AgentProfile.Role.SUPERVISOR)


def has_whatsapp_skill(user: AnyUser) -> bool:
    profile = profile_of(user)
    return bool(profile and profile.group and profile.group.has_skill(WHATSAPP_SKILL))


def require_whatsapp_access(user: AnyUser) -> None:
    if not (is_supervisor(user) or has_whatsapp_skill(user)):
        raise NotAllowed(_("Your agent group does not have the WhatsApp skill."))


def display_name(user: AnyUser) -> str:
    if not user.is_authenticated:
        return ""
    full = user.get_full_name().strip()  # type: ignore[union-attr, attr-defined]
    return full or user.get_username()
