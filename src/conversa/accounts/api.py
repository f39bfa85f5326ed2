"""API tokens. (The signed-in user's own endpoints, "me", list her campaigns: campaigns/api.py.)"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.lockout import LoginLocked, is_locked_out
from conversa.accounts.tokens import issue_token
from conversa.core.api import SafeJSONParser


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>` in the OpenAPI schema (as DRF's token scheme was: same name)."""

    target_class = "conversa.accounts.tokens.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return dict(build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token"))


class TokenView(APIView):
    """POST {"username", "password"} → {"token", "expires_at"}: authenticate API calls with
    `Token <token>` until it expires. Each login issues a new token (shown once: only its digest is
    stored). Every failure counts toward the login limiter shared with the console and the admin
    (django-axes); a locked account or address gets 429 `locked_out`."""

    permission_classes = []
    serializer_class = AuthTokenSerializer
    throttle_classes = []  # the login limiter, not a per-process throttle, bounds password guessing
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]

    @extend_schema(request=AuthTokenSerializer, responses=inline_serializer("IssuedToken", {
        "token": serializers.CharField(), "expires_at": serializers.DateTimeField()}))
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
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
        return Response({"token": token.key, "expires_at": token.expires_at})
