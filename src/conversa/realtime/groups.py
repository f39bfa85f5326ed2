"""Names of the channel-layer groups; a browser joins only the groups it may see."""

from __future__ import annotations

SUPERVISORS = "supervisors"


def campaign_group(campaign_id: int) -> str:
    """Agents of the campaign with the WhatsApp skill, and its supervisors: general-inbox events."""
    return f"campaign-{campaign_id}"


def agent_group(user_id: int) -> str:
    return f"agent-{user_id}"


def line_group(line_id: int) -> str:
    """The sandbox customer simulator of a line."""
    return f"line-{line_id}"
