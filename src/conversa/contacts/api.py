"""REST API of contacts: read, edit, search, and the disposition history (Records)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.selectors import display_name, require_whatsapp_access
from conversa.campaigns.models import Disposition
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.models import Contact
from conversa.core.api import current_user, request_object
from conversa.core.errors import InvalidInput, NotFound
from conversa.inbox import services


class OptionalEmailField(serializers.EmailField):
    """`null` when the contact has no email: the schema says `format: email`, which "" is not."""

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return str(value) if value else None


class ContactSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(read_only=True)
    email = OptionalEmailField(read_only=True, allow_null=True)

    class Meta:
        model = Contact
        fields = ["id", "database", "phone", "first_name", "last_name", "full_name", "email", "custom",
                  "created_at", "updated_at"]
        read_only_fields = fields


class DispositionSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    option_name = serializers.CharField(source="option.name", read_only=True)
    agent_name = serializers.SerializerMethodField()

    class Meta:
        model = Disposition
        fields = ["id", "campaign", "campaign_name", "option", "option_name", "sub_option", "notes",
                  "form_answers", "follow_up_at", "agent", "agent_name", "conversation", "channel", "created_at"]
        read_only_fields = fields

    def get_agent_name(self, obj: Disposition) -> str:
        return display_name(obj.agent)


class ContactDetailView(APIView):
    @extend_schema(responses=ContactSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ContactSerializer(services.visible_contact(current_user(request), pk)).data)

    @extend_schema(request=ContactSerializer, responses=ContactSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        data = request_object(request)  # `null`, a list, a string: 400 naming the body
        if not data:
            raise InvalidInput(_("Send the fields to change."), field="first_name")
        contact = services.edit_contact(pk, current_user(request), data)
        return Response(ContactSerializer(contact).data)


class ContactDispositionsView(generics.ListAPIView):
    """The contact's history across campaigns and channels, newest first."""

    serializer_class = DispositionSerializer

    def get_queryset(self) -> Any:
        contact = services.visible_contact(current_user(self.request), self.kwargs["pk"])
        return (Disposition.objects.filter(contact=contact)
                .select_related("campaign", "option", "agent").order_by("-created_at", "-id"))


class CampaignContactsView(generics.ListAPIView):
    """Search the campaign's contact database (to identify a customer as an existing contact)."""

    serializer_class = ContactSerializer

    @extend_schema(parameters=[OpenApiParameter("q", str, description="name, phone or email fragment")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        require_whatsapp_access(current_user(self.request))
        campaign = campaigns_for(current_user(self.request)).filter(pk=self.kwargs["pk"]).first()
        if campaign is None:
            raise NotFound(_("Campaign not found."))
        qs = Contact.objects.filter(database_id=campaign.contact_database_id)
        term = (self.request.query_params.get("q") or "").strip()
        if term:
            qs = qs.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term)
                           | Q(phone__icontains=term) | Q(email__icontains=term))
        return qs.order_by("first_name", "last_name", "id")
