"""The console header's status control (read by the console page and its own partial view)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from conversa.accounts.models import AgentProfile
from conversa.accounts.selectors import has_whatsapp_skill, profile_of
from conversa.accounts.services import pause_reasons


def status_context(user: User) -> dict[str, Any]:
    """The header's status control: only agents who work the WhatsApp inbox have one."""
    profile = profile_of(user)
    if profile is None or profile.role != AgentProfile.Role.AGENT or not has_whatsapp_skill(user):
        return {"agent_status": None}
    return {"agent_status": profile, "pause_reasons": pause_reasons()}
