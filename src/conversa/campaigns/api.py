"""REST API of campaigns: what an agent works on and the tools to act (replies, dispositions,
the campaign's contacts), and the signed-in user ("me"), whose answer lists her campaigns: this is
the lowest layer that knows them (accounts sits below campaigns)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.models import AgentProfile
from conversa.accounts.selectors import (
    display_name,
    has_whatsapp_skill,
    is_supervisor,
    profile_of,
    require_whatsapp_access,
)
from conversa.accounts.services import set_status
from conversa.campaigns.models import Campaign, DispositionOption, QuickReply
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.api import ContactSerializer
from conversa.contacts.models import Contact
from conversa.core.api import current_user, request_object
from conversa.core.errors import NotFound

User = get_user_model()


class CampaignSerializer(serializers.ModelSerializer):
    line = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = ["id", "name", "contact_database", "whatsapp_enabled", "routing", "line"]
        read_only_fields = fields

    def get_line(self, obj: Campaign) -> int | None:
        line = getattr(obj, "line", None)
        return line.pk if line else None


class DispositionOptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DispositionOption
        fields = ["id", "name", "kind", "positive", "form_fields", "sub_options"]
        read_only_fields = fields


class QuickReplySerializer(serializers.ModelSerializer):
    class Meta:
        model = QuickReply
        fields = ["id", "title", "body"]
        read_only_fields = fields


class CampaignAgentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    full_name = serializers.CharField()
    status = serializers.CharField()
    whatsapp = serializers.BooleanField()


def _campaign(request: Any, pk: int) -> Campaign:
    require_whatsapp_access(request.user)
    campaign = campaigns_for(request.user).filter(pk=pk).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."))
    return campaign


class CampaignListView(generics.ListAPIView):
    serializer_class = CampaignSerializer

    def get_queryset(self) -> Any:
        return campaigns_for(self.request.user).select_related("line").order_by("name")


class CampaignDispositionsView(generics.ListAPIView):
    serializer_class = DispositionOptionSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return _campaign(self.request, self.kwargs["pk"]).disposition_options.filter(active=True)


class CampaignQuickRepliesView(generics.ListAPIView):
    serializer_class = QuickReplySerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return _campaign(self.request, self.kwargs["pk"]).quick_replies.filter(active=True)


class CampaignAgentsView(generics.ListAPIView):
    """The campaign's agents, for the transfer picker (id is the user id to transfer to)."""

    serializer_class = CampaignAgentSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        campaign = _campaign(self.request, self.kwargs["pk"])
        users = campaign.agents.filter(is_active=True).select_related("profile__group").order_by("username")
        return [
            {"id": u.pk, "username": u.get_username(), "full_name": display_name(u),
             "status": getattr(getattr(u, "profile", None), "status", "offline"),
             "whatsapp": has_whatsapp_skill(u)}
            for u in users
        ]


class CampaignContactsView(generics.ListAPIView):
    """Search the campaign's contact database (to identify a customer as an existing contact)."""

    serializer_class = ContactSerializer

    @extend_schema(parameters=[OpenApiParameter("q", str, description="name, phone or email fragment")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        campaign = _campaign(self.request, self.kwargs["pk"])
        qs = Contact.objects.filter(database_id=campaign.contact_database_id)
        term = (self.request.query_params.get("q") or "").strip()
        if term:
            qs = qs.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term)
                           | Q(phone__icontains=term) | Q(email__icontains=term))
        return qs.order_by("first_name", "last_name", "id")


# --------------------------------------------------------------------------- the signed-in user
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
    status = serializers.ChoiceField(choices=AgentProfile.Status.choices)


class MyStatusView(APIView):
    @extend_schema(request=StatusSerializer, responses=MeSerializer)
    def post(self, request: Request) -> Response:
        payload = StatusSerializer(data=request_object(request))
        payload.is_valid(raise_exception=True)
        set_status(current_user(request), payload.validated_data["status"])
        return Response(_me(request))
