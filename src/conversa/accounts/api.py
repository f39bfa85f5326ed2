"""The signed-in user: who she is, her campaigns, and her presence status."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.lockout import LoginLocked, is_locked_out
from conversa.accounts.selectors import display_name, has_whatsapp_skill, is_supervisor, profile_of
from conversa.accounts.services import set_status
from conversa.accounts.tokens import issue_token, token_expires_at
from conversa.core.api import SafeJSONParser, current_user, request_object
from conversa.inbox.selectors import campaigns_for

MeSerializer = inline_serializer("Me", {
    "id": serializers.IntegerField(), "username": serializers.CharField(), "full_name": serializers.CharField(),
    "status": serializers.CharField(), "capacity": serializers.IntegerField(),
    "whatsapp": serializers.BooleanField(), "supervisor": serializers.BooleanField(),
    "campaigns": serializers.ListField(child=serializers.IntegerField()),
})


def _me(request: Request) -> dict[str, object]:
    user = current_user(request)
    profile = profile_of(user)
    return {
        "id": user.pk, "username": user.get_username(), "full_name": display_name(user),
        "status": profile.status if profile else "offline", "capacity": profile.capacity if profile else 0,
        "whatsapp": has_whatsapp_skill(user), "supervisor": is_supervisor(user),
        "campaigns": list(campaigns_for(user).values_list("pk", flat=True)),
    }


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(_me(request))


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "paused", "offline"])


class MyStatusView(APIView):
    @extend_schema(request=StatusSerializer, responses=MeSerializer)
    def post(self, request: Request) -> Response:
        payload = StatusSerializer(data=request_object(request))
        payload.is_valid(raise_exception=True)
        set_status(current_user(request), payload.validated_data["status"])
        return Response(_me(request))


class TokenView(ObtainAuthToken):
    """POST {"username", "password"} → {"token", "expires_at"}: authenticate API calls with
    `Token <token>` until it expires. Every failure counts toward the login limiter shared with the
    console and the admin (django-axes); a locked account or address gets 429 `locked_out`."""

    throttle_classes = []  # the login limiter, not a per-process throttle, bounds password guessing
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]

    @extend_schema(request=AuthTokenSerializer, responses=inline_serializer("IssuedToken", {
        "token": serializers.CharField(), "expires_at": serializers.DateTimeField()}))
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            data = request.data if isinstance(request.data, dict) else {}
            username = data.get("username")
            if is_locked_out(request=request, username=username if isinstance(username, str) else None):
                raise LoginLocked()
            raise exceptions.ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        token = issue_token(user=user)
        # As a console login does: the limiter clears the account's failures, last_login is set.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response({"token": token.key, "expires_at": token_expires_at(token=token)})
