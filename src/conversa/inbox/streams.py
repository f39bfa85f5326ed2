"""The agent console's websocket stream ("agent"): which groups a user listens to and what she
may be shown. Registered with realtime in InboxConfig.ready()."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conversa.accounts.selectors import AnyUser, has_whatsapp_skill, is_admin, is_supervisor
from conversa.campaigns.selectors import campaigns_for
from conversa.realtime import groups
from conversa.realtime.stream import Audience, Payload, StreamRefused


@dataclass(frozen=True)
class CampaignScope:
    """What a supervisor may see of the global "supervisors" group: her campaigns (admins: all)."""

    campaign_ids: frozenset[int]
    all_campaigns: bool = False

    def __call__(self, payload: Payload) -> bool:
        return self.all_campaigns or _campaign_of(payload) in self.campaign_ids


def _campaign_of(payload: Payload) -> int | None:
    conversation = payload.get("conversation")
    if isinstance(conversation, dict) and isinstance(conversation.get("campaign"), int):
        return int(conversation["campaign"])
    return None


def agent_audience(*, user: AnyUser, route: Mapping[str, Any]) -> Audience:
    """The agent console's audience; refused (4403) when the user has no WhatsApp access.

    Computed once per connection: membership changes (added to a campaign, skill removed) apply
    when the socket reconnects.
    """
    supervisor = is_supervisor(user)
    if user.pk is None or not (supervisor or has_whatsapp_skill(user)):
        raise StreamRefused(4403)
    campaign_ids = frozenset(campaigns_for(user).values_list("pk", flat=True))
    names = {groups.agent_group(user.pk), *(groups.campaign_group(c) for c in campaign_ids)}
    if supervisor:
        names.add(groups.SUPERVISORS)
    return Audience(groups=frozenset(names), scoped_groups=frozenset({groups.SUPERVISORS}),
                    admit_scoped=CampaignScope(campaign_ids=campaign_ids, all_campaigns=is_admin(user)))
