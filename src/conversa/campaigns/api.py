"""REST API of campaigns: what an agent works on and the tools to act (replies, dispositions,
the campaign's contacts), and the signed-in user ("me"), whose answer lists her campaigns: this is
the lowest layer that knows them (accounts sits below campaigns)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from conversa.accounts.models import AgentProfile, PauseReason
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
from conversa.contacts.api import ContactSerializer, contact_rows
from conversa.contacts.selectors import decode_name_cursor, search_contact_rows
from conversa.core.api import current_user, request_object
from conversa.core.errors import NotFound

User = get_user_model()
CONTACT_PAGE = 100
CONTACT_PAGE_MAX = 200


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


class ContactSearchParams(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, default="",
                              help_text="name or email fragment (case-insensitive), or a phone number's digits "
                                        "(spaces, dashes, dots, parentheses and a leading + ignored); "
                                        "empty lists them all")
    cursor = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Continue after the previous page: the `next` link's cursor (opaque). "
                                             "A malformed cursor is a 400 naming `cursor`.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=CONTACT_PAGE_MAX, default=CONTACT_PAGE,
                                     help_text=f"Page size, 1 to {CONTACT_PAGE_MAX} (default {CONTACT_PAGE}).")
    page = serializers.IntegerField(required=False, min_value=1, max_value=1,
                                    help_text="Former page-number pagination: only 1 is accepted; follow `next`.")


ContactPageSerializer = inline_serializer("ContactPage", {
    "next": serializers.URLField(allow_null=True, help_text="The next page, or null at the end."),
    "results": ContactSerializer(many=True),
})


class CampaignContactsView(APIView):
    """Search the campaign's contact database (to identify a customer as an existing contact): one
    query per page, in name order, continued with `next` (a keyset cursor; no count)."""

    @extend_schema(parameters=[ContactSearchParams], responses=ContactPageSerializer)
    def get(self, request: Request, pk: int) -> Response:
        campaign = _campaign(request, pk)
        params = ContactSearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        page = search_contact_rows(database_id=campaign.contact_database_id,
                                   term=params.validated_data["q"].strip(),
                                   after=decode_name_cursor(params.validated_data["cursor"], field="cursor"),
                                   limit=params.validated_data["limit"])
        next_url = None
        if page.next is not None:
            next_url = remove_query_param(
                replace_query_param(request.build_absolute_uri(), "cursor", page.next.encode()), "page")
        return Response({"next": next_url, "results": contact_rows(page.rows)})


# --------------------------------------------------------------------------- the signed-in user
MeSerializer = inline_serializer("Me", {
    "id": serializers.IntegerField(), "username": serializers.CharField(), "full_name": serializers.CharField(),
    "status": serializers.CharField(), "capacity": serializers.IntegerField(),
    "pause_reason": serializers.IntegerField(allow_null=True), "pause_reason_name": serializers.CharField(),
    "whatsapp": serializers.BooleanField(), "supervisor": serializers.BooleanField(),
    "campaigns": serializers.ListField(child=serializers.IntegerField()),
})


def _me(request: Request) -> dict[str, object]:
    user = current_user(request)
    profile = profile_of(user)
    return {
        "id": user.pk, "username": user.get_username(), "full_name": display_name(user),
        "status": profile.status if profile else "offline", "capacity": profile.capacity if profile else 0,
        "pause_reason": profile.pause_reason_id if profile else None,
        "pause_reason_name": profile.pause_reason.name if profile and profile.pause_reason else "",
        "whatsapp": has_whatsapp_skill(user), "supervisor": is_supervisor(user),
        "campaigns": list(campaigns_for(user).values_list("pk", flat=True)),
    }


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(_me(request))


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AgentProfile.Status.choices)
    pause_reason = serializers.IntegerField(required=False, allow_null=True,
                                            help_text="With `paused`: the id of one of GET /api/v1/pause-reasons/.")


class MyStatusView(APIView):
    @extend_schema(request=StatusSerializer, responses=MeSerializer)
    def post(self, request: Request) -> Response:
        payload = StatusSerializer(data=request_object(request))
        payload.is_valid(raise_exception=True)
        set_status(user=current_user(request), status=payload.validated_data["status"],
                   pause_reason_id=payload.validated_data.get("pause_reason"))
        return Response(_me(request))


class PauseReasonSerializer(serializers.ModelSerializer):
    class Meta:
        model = PauseReason
        fields = ["id", "name", "productive"]
        read_only_fields = fields


class PauseReasonListView(generics.ListAPIView):
    """The pause reasons an agent may choose (POST /api/v1/me/status/ {"status": "paused",
    "pause_reason": id}); productive ones count as work in the reports."""

    serializer_class = PauseReasonSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return PauseReason.objects.filter(active=True)
