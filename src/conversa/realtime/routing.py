"""Websocket routes, imported by conversa.asgi.

Origin check (browsers only; see auth.origin_checked) → session cookie auth → `?token=` auth.
The server's own `send` is kept in the scope (consumers.SERVER_SEND) before Channels' session
middleware wraps it: live frames go straight to it (see EventStreamConsumer._write_forever).
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from conversa.realtime.auth import TokenQueryAuthMiddleware, origin_checked
from conversa.realtime.consumers import SERVER_SEND, AgentConsumer, SandboxConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    # Demo-only surface: the sandbox customer simulator (docs/operations.md).
    path("ws/sandbox/<int:line_id>/", SandboxConsumer.as_asgi()),
]



def _server_send_kept(inner: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await inner({**scope, SERVER_SEND: send}, receive, send)

    return app


websocket_application = _server_send_kept(origin_checked(
    AuthMiddlewareStack(TokenQueryAuthMiddleware(URLRouter(websocket_urlpatterns)))
))
