"""Websocket authentication: the browser's session cookie, or an unexpired API token for API clients."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

Scope = dict[str, Any]
ASGIApp = Any


def query_param(scope: Scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    return values[0] if values else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def presented_token(scope: Scope) -> str | None:
    """`Authorization: Token <key>` (preferred: query strings end up in access logs) or `?token=`."""
    header = _header(scope, b"authorization")
    if header and header.startswith("Token "):
        return header[len("Token "):].strip()
    return query_param(scope, "token")


class TokenLookup(Protocol):
    def __call__(self, *, key: str) -> AbstractBaseUser | None: ...


# Which user an API token names is accounts' business (expiry included): accounts registers its
# lookup in AppConfig.ready(), as realtime sits below it. None registered: every token is refused.
_token_lookups: dict[str, TokenLookup] = {}


def register_token_lookup(*, lookup: TokenLookup) -> None:
    _token_lookups["token"] = lookup


@database_sync_to_async
def _token_user(key: str) -> AbstractBaseUser | AnonymousUser:
    lookup = _token_lookups.get("token")
    return (lookup(key=key) if lookup is not None else None) or AnonymousUser()


class TokenQueryAuthMiddleware:
    """Sits inside AuthMiddlewareStack: a token (header or `?token=`) wins over the session cookie
    when given, and a bad token means anonymous (never a silent fallback to whoever the cookie
    says)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        key = presented_token(scope)
        if key is not None:
            scope = {**scope, "user": await _token_user(key)}
        return await self.inner(scope, receive, send)


def origin_checked(inner: ASGIApp) -> ASGIApp:
    """AllowedHostsOriginValidator, except that a handshake WITHOUT an Origin header is let through
    when it authenticates with a token.

    Browsers always send Origin on websocket handshakes, so a missing one means a non-browser API
    client; cross-site websocket hijacking (what the check prevents: a foreign page riding the
    session cookie) does not apply to a token the client had to present itself.
    """
    validated = AllowedHostsOriginValidator(inner)

    async def app(scope: Scope, receive: Any, send: Any) -> Any:
        if _header(scope, b"origin") is None and presented_token(scope):
            return await inner(scope, receive, send)
        return await validated(scope, receive, send)

    return app
