"""ASGI entry point: webhook POSTs (the fast path), HTTP (Django), websockets (Channels), and lifespan
(embedded worker)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversa.settings")

from django.core.asgi import get_asgi_application

# Django's standard handler, every middleware: static files (ServeStatic's middleware is async-only).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from conversa.core.handlers import OneHopASGIHandler  # noqa: E402
from conversa.realtime.services import remember_server_loop  # noqa: E402
from conversa.whatsapp.fast_intake import webhook_app, webhook_route  # noqa: E402


def _websocket_app() -> Any:
    try:
        from conversa.realtime.routing import websocket_application
    except ImportError:
        return None
    return websocket_application


# Everything else over HTTP: the middleware and the view in one thread hop (core.handlers).
one_hop_app = OneHopASGIHandler()
_static_prefix = settings.STATIC_URL if (settings.STATIC_URL or "").startswith("/") else None
_routes: dict[str, Any] = {"http": one_hop_app}
if (ws_app := _websocket_app()) is not None:
    _routes["websocket"] = ws_app
router = ProtocolTypeRouter(_routes)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                remember_server_loop(asyncio.get_running_loop())
                if settings.CONVERSA_EMBEDDED_WORKER:
                    from conversa.core.worker import start_embedded_worker

                    start_embedded_worker()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    # Webhook POSTs skip Django's request stack: verified and group-committed (whatsapp.fast_intake).
    if (webhook := webhook_route(scope)) is not None:
        kind, line_id = webhook
        await webhook_app(scope, receive, send, kind=kind, line_id=line_id)
        return
    if scope["type"] == "http" and _static_prefix and scope["path"].startswith(_static_prefix):
        await django_asgi_app(scope, receive, send)
        return
    await router(scope, receive, send)
