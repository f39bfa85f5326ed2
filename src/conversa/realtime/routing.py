"""Websocket routes, imported by conversa.asgi.

Origin check (browsers only; see auth.origin_checked) → session cookie auth → `?token=` auth.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from conversa.realtime.auth import TokenQueryAuthMiddleware, origin_checked
from conversa.realtime.consumers import AgentConsumer, SandboxConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    # Demo-only surface: the sandbox customer simulator (docs/operations.md).
    path("ws/sandbox/<int:line_id>/", SandboxConsumer.as_asgi()),
]

websocket_application = origin_checked(
    AuthMiddlewareStack(TokenQueryAuthMiddleware(URLRouter(websocket_urlpatterns)))
)
