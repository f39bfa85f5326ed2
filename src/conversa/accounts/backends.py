"""The signed-in user as every request reads her: with her agent profile and group in the same
statement (role, status and skills are checked on nearly every request; read apart they were two
more round trips each)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

# select_related path from a user to what requests read of her.
PROFILE_AND_GROUP = "profile__group"


class ModelBackendWithProfile(ModelBackend):
    """Django's ModelBackend (same sign-in, same permissions) whose per-request user lookup for a
    session also fetches her profile and group."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and username is not None and password is not None:
            # Refused here is refused: ModelBackend, listed after this one only so that sessions
            # signed in through it stay valid, would hash the same wrong password a second time.
            raise PermissionDenied
        return user

    def get_user(self, user_id: Any) -> Any:
        users = get_user_model()._default_manager.select_related(PROFILE_AND_GROUP)
        try:
            user = users.get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
