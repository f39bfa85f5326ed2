"""REST API of lines and their approved templates."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import generics, serializers

from conversa.accounts.selectors import require_whatsapp_access
from conversa.campaigns.selectors import campaigns_for
from conversa.core.errors import NotFound
from conversa.whatsapp.models import Line, MessageTemplate


class LineSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    provider_kind = serializers.CharField(source="provider.kind", read_only=True)

    class Meta:
        model = Line
        fields = ["id", "name", "number", "campaign", "campaign_name", "provider_kind", "active", "health_error"]
        read_only_fields = fields


class TemplateSerializer(serializers.ModelSerializer):
    param_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = MessageTemplate
        fields = ["id", "name", "language", "category", "header", "body", "footer", "buttons", "status",
                  "param_count"]
        read_only_fields = fields


def visible_lines(user: Any) -> Any:
    require_whatsapp_access(user)
    return Line.objects.filter(active=True, campaign__in=campaigns_for(user)).select_related("campaign", "provider")


class LineListView(generics.ListAPIView):
    serializer_class = LineSerializer

    def get_queryset(self) -> Any:
        return visible_lines(self.request.user).order_by("number")


class LineTemplatesView(generics.ListAPIView):
    """Approved templates of the line: the only messages allowed outside the 24 h window."""

    serializer_class = TemplateSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        line = visible_lines(self.request.user).filter(pk=self.kwargs["pk"]).first()
        if line is None:
            raise NotFound(_("Line not found."))
        return line.templates.filter(status=MessageTemplate.Status.APPROVED).order_by("name")
