"""The signed-in user: who she is, her campaigns, and her presence status."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from conversa.accounts.selectors import display_name, has_whatsapp_skill, is_supervisor, profile_of
from conversa.accounts.services import set_status
from conversa.core.api import current_user
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


class MyStatusView(APIView):
    @extend_schema(request=inline_serializer("StatusRequest", {"status": serializers.ChoiceField(
        choices=["ready", "paused", "offline"])}), responses=MeSerializer)
    def post(self, request: Request) -> Response:
        set_status(current_user(request), str(request.data.get("status", "")))
        return Response(_me(request))


class LoginThrottle(AnonRateThrottle):
    """Slows password guessing on the token endpoint (per client IP, per process cache)."""

    scope = "login"


class TokenView(ObtainAuthToken):
    """POST {"username", "password"} → {"token"}: authenticate API calls with `Token <token>`."""

    throttle_classes = [LoginThrottle]
