"""API tokens: django-rest-knox's hashed tokens, with a lifetime (CONVERSA_API_TOKEN_TTL_HOURS).

Only a SHA-512 digest of each token is stored, so a copy of the database (a backup, a replica, a
leaked dump) lets nobody call the API. Every login at the token endpoint issues a new token (one per
device or script, at most CONVERSA_API_TOKENS_PER_USER live ones); an expired token authenticates
nobody (401 naming the expiry); logging out of the console revokes the user's tokens; admins list
and revoke tokens in the admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from hmac import compare_digest
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions

from conversa.accounts.backends import PROFILE_AND_GROUP


def token_lifetime() -> timedelta:
    return timedelta(hours=settings.CONVERSA_API_TOKEN_TTL_HOURS)


def token_expires_at(*, token: AuthToken) -> datetime:
    return token.expiry or token.created + token_lifetime()


def token_is_expired(*, token: AuthToken) -> bool:
    return timezone.now() >= token_expires_at(token=token)


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = _("Token expired: request a new one from /api/v1/auth/token/.")
    default_code = "token_expired"


def _stored_token(*, key: str) -> AuthToken | None:
    """The stored token whose digest is this key's (one indexed read by the key's first characters;
    the digests are compared in constant time), expired or not."""
    if not key or len(key) > 256:  # a hostile header is hashed by no one
        return None
    digest = hash_token(key)
    # Her profile and group come with her (accounts.backends).
    found = AuthToken.objects.select_related(f"user__{PROFILE_AND_GROUP}")
    for candidate in found.filter(token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH]):
        if compare_digest(digest, candidate.digest):
            return candidate
    return None


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, refused once the token is past its expiry. Unlike knox's own
    check it reads one row per request and writes nothing: expired tokens are deleted when their
    user logs in again (issue_token), not on the read path."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        stored = _stored_token(key=key)
        if stored is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token_is_expired(token=stored):
            raise TokenExpired()
        user, auth_token = self.validate_user(stored)
        return user, auth_token


def user_for_token(*, key: str) -> User | None:
    """The active user a valid, unexpired token belongs to (the websocket's token check)."""
    stored = _stored_token(key=key)
    if stored is None or not stored.user.is_active or token_is_expired(token=stored):
        return None
    return stored.user


@dataclass(frozen=True)
class IssuedToken:
    key: str  # shown once, to whoever logged in; only its digest is stored
    expires_at: datetime


@transaction.atomic
def issue_token(*, user: User) -> IssuedToken:
    """A new token for the user. Her expired tokens go, and so do her oldest live ones beyond
    CONVERSA_API_TOKENS_PER_USER (their holders must log in again)."""
    now = timezone.now()
    mine = AuthToken.objects.select_for_update().filter(user=user)
    mine.filter(expiry__lte=now).delete()
    live = list(mine.order_by("-created").values_list("pk", flat=True))
    keep = max(settings.CONVERSA_API_TOKENS_PER_USER - 1, 0)
    if len(live) > keep:
        AuthToken.objects.filter(pk__in=live[keep:]).delete()
    token, key = AuthToken.objects.create(user=user, expiry=token_lifetime())
    return IssuedToken(key=key, expires_at=token_expires_at(token=token))


def revoke_tokens(*, user: User) -> int:
    return revoke_token_set(tokens=AuthToken.objects.filter(user=user))


def revoke_token_set(*, tokens: QuerySet[Any]) -> int:
    """Deletes the tokens (an admin's bulk revoke, a logout); their holders must log in again."""
    deleted, _ = tokens.delete()
    return deleted


@receiver(user_logged_out, dispatch_uid="conversa.accounts.tokens.revoke_on_logout")
def _revoke_on_logout(sender: Any, request: HttpRequest | None, user: User | None,
                      **kwargs: Any) -> None:
    """Logging out of the console (or the admin) ends the user's API access too."""
    if user is not None:
        revoke_tokens(user=user)
