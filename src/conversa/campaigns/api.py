"""REST API of campaigns: what an agent works on and the tools to act (replies, dispositions)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from rest_framework import generics, serializers

from conversa.accounts.selectors import display_name, has_whatsapp_skill, require_whatsapp_access
from conversa.campaigns.models import Campaign, DispositionOption, QuickReply
from conversa.campaigns.selectors import campaigns_for
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
