"""API tokens: DRF's one token per user, with a lifetime (CONVERSA_API_TOKEN_TTL_HOURS).

An expired token authenticates nobody (401 naming the expiry) and the token endpoint replaces it;
logging out of the console revokes it; admins list and revoke tokens in the admin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_lifetime() -> timedelta:
    return timedelta(hours=settings.CONVERSA_API_TOKEN_TTL_HOURS)


def token_expires_at(*, token: Token) -> datetime:
    return token.created + token_lifetime()


def token_is_expired(*, token: Token) -> bool:
    return timezone.now() >= token_expires_at(token=token)


class TokenExpired(exceptions.AuthenticationFailed):
    default_detail = _("Token expired: request a new one from /api/v1/auth/token/.")
    default_code = "token_expired"


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` as before, refused once the token is older than its lifetime."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token=token):
            raise TokenExpired()
        return user, token


def user_for_token(*, key: str) -> User | None:
    """The active user a valid, unexpired token belongs to (the websocket's token check)."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active or token_is_expired(token=token):
        return None
    return token.user


@transaction.atomic
def issue_token(*, user: User) -> Token:
    """The user's current token, or a new one if she has none or hers has expired."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is not None and not token_is_expired(token=token):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user=user)


def revoke_tokens(*, user: User) -> int:
    return revoke_token_set(tokens=Token.objects.filter(user=user))


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
