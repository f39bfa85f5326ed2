"""REST API of a contact as the inbox sees it: read and edit (who may is the inbox's rule: the agent
attending a conversation with the contact, or a supervisor of its campaign) and its disposition
history (Records). Here rather than in contacts, which sits below campaigns and the inbox."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.selectors import display_name
from conversa.campaigns.models import Disposition
from conversa.contacts.api import ContactSerializer
from conversa.core.api import current_user, request_object
from conversa.core.errors import InvalidInput
from conversa.inbox import selectors
from conversa.inbox.actions import contacts as contact_actions


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
        return Response(ContactSerializer(selectors.visible_contact(current_user(request), pk)).data)

    @extend_schema(request=ContactSerializer, responses=ContactSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        data = request_object(request)  # `null`, a list, a string: 400 naming the body
        if not data:
            raise InvalidInput(_("Send the fields to change."), field="first_name")
        contact = contact_actions.edit_contact(contact_id=pk, user=current_user(request), data=data)
        return Response(ContactSerializer(contact).data)


class ContactDispositionsView(generics.ListAPIView):
    """The contact's history across campaigns and channels, newest first."""

    serializer_class = DispositionSerializer

    def get_queryset(self) -> Any:
        contact = selectors.visible_contact(current_user(self.request), self.kwargs["pk"])
        return (Disposition.objects.filter(contact=contact)
                .select_related("campaign", "option", "agent").order_by("-created_at", "-id"))
