"""The sandbox customer simulator's websocket stream ("sandbox"). Registered with realtime in
WhatsappConfig.ready()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from conversa.accounts.selectors import AnyUser
from conversa.realtime import event_types, groups
from conversa.realtime.stream import Audience, StreamRefused
from conversa.whatsapp.models import Line, Provider


def sandbox_audience(*, user: AnyUser, route: Mapping[str, Any]) -> Audience:
    """The messages of one sandbox line (`route["line_id"]`).

    Open to anyone, like the sandbox webhook the simulator posts to, unless the sandbox provider
    has a webhook secret (someone hardened it): then a logged-in user is required.
    """
    if not settings.CONVERSA_SANDBOX_SIMULATOR:
        raise StreamRefused(4404)
    line = Line.objects.select_related("provider").filter(pk=int(route["line_id"]),
                                                          provider__kind=Provider.Kind.SANDBOX).first()
    if line is None:
        raise StreamRefused(4404)
    if line.provider.webhook_secret and not user.is_authenticated:
        raise StreamRefused(4401)
    return Audience(groups=frozenset({groups.line_group(line.pk)}), event_prefixes=(event_types.MESSAGE_PREFIX,))
