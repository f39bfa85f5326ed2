"""REST API of the inbox: thin views over inbox.actions (writes) and inbox.selectors (reads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from conversa.core.api import MAX_ID, AwareDateTimeField, SafeJSONParser, current_user, id_field, request_object
from conversa.core.errors import InvalidInput
from conversa.core.media import media_response, requested_range
from conversa.inbox import selectors
from conversa.inbox.actions import assignment, closing, contacts, delivery, outbound, replies
from conversa.inbox.keyset import decode_cursor, parse_limit
from conversa.inbox.models import Conversation
from conversa.inbox.serializers import (
    ConversationSerializer,
    MessageSerializer,
    conversation_rows,
    message_list,
)


def _body(request: Request) -> Any:
    """The body for a serializer: an object (400 naming the body otherwise); multipart as-is."""
    return request.data if hasattr(request.data, "getlist") else request_object(request)


CURSOR_PARAMETER = OpenApiParameter(
    "cursor", str, description="Continue after the previous page: the `next` link's cursor (opaque). "
    "A malformed cursor is a 400 naming `cursor`.")
INBOX_LIMIT_PARAMETER = OpenApiParameter(
    "limit", int, description=f"Page size, 1 to {selectors.INBOX_PAGE_MAX} (default {selectors.INBOX_PAGE}).")
PAGE_PARAMETER = OpenApiParameter(
    "page", int, deprecated=True, description="Former page-number pagination: only 1 is accepted; follow `next`.")
ConversationPageSerializer = inline_serializer("ConversationPage", {
    "next": serializers.URLField(allow_null=True, help_text="The next page, or null at the end."),
    "results": ConversationSerializer(many=True),
})


class _InboxView(APIView):
    """Keyset pagination: `next` carries the position of the last row, so conversations arriving,
    captured or closed between two pages cause no gaps or duplicates and no page costs a count."""

    # Which inbox: the selector that reads one page of it for a user.
    read_page: Callable[..., selectors.Page[dict[str, Any]]]

    @extend_schema(parameters=[CURSOR_PARAMETER, INBOX_LIMIT_PARAMETER, PAGE_PARAMETER],
                   responses=ConversationPageSerializer)
    def get(self, request: Request) -> Response:
        if request.query_params.get("page", "").strip() not in ("", "1"):
            raise InvalidInput(_("page: pages are followed with the next link (cursor), not numbers."), field="page")
        after = decode_cursor(request.query_params.get("cursor"), field="cursor")
        limit = parse_limit(request.query_params.get("limit"), default=selectors.INBOX_PAGE,
                            maximum=selectors.INBOX_PAGE_MAX)
        page = type(self).read_page(current_user(request), after=after, limit=limit)
        next_url = None
        if page.cursor is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "cursor", page.cursor.encode())
            next_url = remove_query_param(next_url, "page")
        # ConversationSerializer's shape (the schema's ConversationPage), built without a serializer per row.
        return Response({"next": next_url, "results": conversation_rows(page.rows)})


@extend_schema_view(get=extend_schema(operation_id="v1_inbox_general_list"))
class GeneralInboxView(_InboxView):
    """Unassigned conversations of the campaigns the agent works on (the general inbox), oldest
    activity first."""

    read_page = staticmethod(selectors.general_inbox_values)


@extend_schema_view(get=extend_schema(operation_id="v1_inbox_personal_list"))
class PersonalInboxView(_InboxView):
    """The agent's own conversations that are not closed (the personal inbox), latest activity first."""

    read_page = staticmethod(selectors.personal_inbox_values)


class ConversationDetailView(APIView):
    @extend_schema(responses=ConversationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        conversation = selectors.get_visible_conversation(current_user(request), pk)
        return Response(ConversationSerializer(conversation).data)


class CaptureView(APIView):
    @extend_schema(request=None, responses={200: ConversationSerializer,
                                            409: OpenApiResponse(description="Already taken by another agent")})
    def post(self, request: Request, pk: int) -> Response:
        conversation = assignment.capture(conversation_id=pk, agent=current_user(request))
        return Response(ConversationSerializer(conversation).data)


class SendMessageSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    quick_reply = id_field(required=False)
    template = id_field(required=False)
    params = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    # One value per dynamic URL button of the template, in order (the end of the button's URL).
    button_params = serializers.ListField(child=serializers.CharField(max_length=2000), required=False,
                                          max_length=10)
    file = serializers.FileField(required=False)
    client_message_id = serializers.CharField(required=False, max_length=64)
    reply_to = id_field(required=False)


class MessagesView(APIView):
    """GET: the thread, oldest first, newest page. POST: send text, a quick reply, a template or a file."""

    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("before", str, description="Load earlier: the cursor of the `Link: rel=\"prev\"` "
                             "header of the page shown (opaque). A malformed cursor is a 400 naming `before`."),
            OpenApiParameter("limit", int, description=f"Page size, 1 to {selectors.THREAD_PAGE_MAX} "
                             f"(default {selectors.THREAD_PAGE})."),
            OpenApiParameter("Link", str, location=OpenApiParameter.HEADER, response=True,
                             description='`<...?before=...>; rel="prev"` when earlier messages exist.'),
        ],
        responses=MessageSerializer(many=True),
        description="The newest messages of the thread (50 by default), oldest first. Earlier ones are "
                    "loaded page by page through the `Link: <...>; rel=\"prev\"` response header (keyset "
                    "pagination: messages arriving meanwhile shift nothing).",
    )
    def get(self, request: Request, pk: int) -> Response:
        before = decode_cursor(request.query_params.get("before"), field="before")
        limit = parse_limit(request.query_params.get("limit"), default=selectors.THREAD_PAGE,
                            maximum=selectors.THREAD_PAGE_MAX)
        conversation = selectors.get_visible_conversation(current_user(request), pk, with_related=False)
        page = selectors.conversation_messages(conversation, before=before, limit=limit)
        response = Response(message_list(page.rows))  # MessageSerializer's shape, documented above
        if page.cursor is not None:
            earlier = replace_query_param(request.build_absolute_uri(), "before", page.cursor.encode())
            response["Link"] = f'<{earlier}>; rel="prev"'
        return response

    @extend_schema(request=SendMessageSerializer, responses={201: MessageSerializer, 200: MessageSerializer})
    def post(self, request: Request, pk: int) -> Response:
        payload = SendMessageSerializer(data=_body(request))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        reply = replies.ReplyRequest(
            text=data.get("text"), quick_reply=data.get("quick_reply"), template=data.get("template"),
            params=data.get("params"), media=data.get("file"), client_message_id=data.get("client_message_id"),
            reply_to=data.get("reply_to"), button_params=data.get("button_params"),
        )
        message, created = replies.send_reply(conversation_id=pk, agent=current_user(request), request=reply)
        return Response(MessageSerializer(message).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class IdentifyView(APIView):
    @extend_schema(
        request=inline_serializer("IdentifyRequest", {
            "contact": serializers.IntegerField(required=False),
            "first_name": serializers.CharField(required=False),
            "last_name": serializers.CharField(required=False),
            "email": serializers.EmailField(required=False),
            "custom": serializers.DictField(required=False),
            # Used only when the conversation has no phone (a customer known by WhatsApp user id).
            "phone": serializers.CharField(required=False),
        }),
        responses=ConversationSerializer,
    )
    def post(self, request: Request, pk: int) -> Response:
        data = request_object(request)
        if not data:
            raise InvalidInput(_("Send {\"contact\": <id>} or the new contact's fields."), field="contact")
        if "contact" in data:
            contact = serializers.IntegerField(min_value=1, max_value=MAX_ID)
            try:
                contact_id = contact.run_validation(data["contact"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"contact": exc.detail}) from None
            conversation = contacts.identify(conversation_id=pk, agent=current_user(request), contact_id=contact_id)
        else:
            conversation = contacts.identify(conversation_id=pk, agent=current_user(request), data=data)
        return Response(ConversationSerializer(conversation).data)


class TransferSerializer(serializers.Serializer):
    agent = id_field(required=False, help_text="the user id to transfer to (Ready, WhatsApp skill, a free slot)")
    inbox = serializers.BooleanField(required=False, default=False,
                                     help_text="true: back to the general inbox (of `campaign` if given)")
    campaign = id_field(required=False, help_text="with inbox: another campaign whose general inbox receives it")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                 help_text="shown in the thread's system line")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("inbox") and attrs.get("agent") is None:
            raise serializers.ValidationError({"agent": "agent is required unless inbox is true."})
        return attrs


class TransferView(APIView):
    @extend_schema(request=TransferSerializer, responses=ConversationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        payload = TransferSerializer(data=_body(request))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if data["inbox"]:
            conversation = assignment.return_to_inbox(conversation_id=pk, user=current_user(request),
                                                      campaign_id=data.get("campaign"), note=data["note"])
        else:
            conversation = assignment.transfer(conversation_id=pk, user=current_user(request),
                                               target_agent_id=data["agent"], note=data["note"])
        return Response(ConversationSerializer(conversation).data)


class CloseSerializer(serializers.Serializer):
    disposition = id_field()
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    sub_option = serializers.CharField(required=False, allow_blank=True, default="")
    form = serializers.DictField(required=False)
    follow_up_at = AwareDateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and data.get("follow_up_at") == "":
            data = {**data, "follow_up_at": None}  # an empty form input: no follow-up
        return super().to_internal_value(data)


class CloseView(APIView):
    @extend_schema(request=CloseSerializer, responses=ConversationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        payload = CloseSerializer(data=_body(request))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        disposition = closing.close(conversation_id=pk, user=current_user(request), option_id=data["disposition"],
                                    notes=data["notes"], sub_option=data["sub_option"], form=data.get("form"),
                                    follow_up_at=data.get("follow_up_at"))
        conversation = Conversation.objects.select_related("campaign", "line", "contact", "agent").get(pk=pk)
        body = ConversationSerializer(conversation).data
        body["disposition"] = disposition.pk
        return Response(body)


class StartConversationSerializer(serializers.Serializer):
    line = id_field()
    phone = serializers.CharField(max_length=40)
    template = id_field()
    params = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False, default=list)
    contact = serializers.DictField(required=False)
    # As on a reply: the media header file of a template that has one (multipart), and one value per
    # dynamic URL button.
    file = serializers.FileField(required=False)
    button_params = serializers.ListField(child=serializers.CharField(max_length=2000), required=False,
                                          max_length=10)


class ConversationsView(APIView):
    @extend_schema(request=StartConversationSerializer, responses={201: ConversationSerializer})
    def post(self, request: Request) -> Response:
        """Start an outbound conversation with an approved template."""
        payload = StartConversationSerializer(data=_body(request))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        conversation = outbound.start_outbound(
            agent=current_user(request), line_id=data["line"], phone=data["phone"], template_id=data["template"],
            params=data["params"], contact_data=data.get("contact"), header_file=data.get("file"),
            button_params=data.get("button_params"),
        )
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ReadView(APIView):
    """The agent opened the thread: her unread count for it goes to 0 (announced to her screens)."""

    @extend_schema(request=None, responses=ConversationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        conversation = replies.mark_read(conversation_id=pk, user=current_user(request))
        return Response(ConversationSerializer(conversation).data)


class ResendView(APIView):
    """Send again a message the provider never confirmed (status `unconfirmed`): the agent's
    explicit decision, audited; 409 for any other message."""

    @extend_schema(request=None, responses={200: MessageSerializer,
                                            409: OpenApiResponse(description="Not waiting for confirmation")})
    def post(self, request: Request, pk: int, message_id: int) -> Response:
        message = delivery.resend_unconfirmed(conversation_id=pk, message_id=message_id, user=current_user(request))
        return Response(MessageSerializer(message).data)


class MessageMediaView(APIView):
    """The file of a message, for users who may see its conversation (404 otherwise): served with
    headers that keep it from running on our origin (conversa.core.media.media_response)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The file.")})
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        message = selectors.visible_media_message(current_user(request), pk)
        return media_response(storage_name=message.media.name, display_name=message.media_filename,
                              range_header=requested_range(request))
