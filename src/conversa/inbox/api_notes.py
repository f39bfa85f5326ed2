"""REST API of private notes and search: a conversation's notes (read and add; never sent to the
customer) and the search of conversations by name, phone or text. Thin over inbox.actions.notes
and the notes / search selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.accounts.selectors import display_name
from conversa.core.api import current_user, request_object
from conversa.inbox import selectors
from conversa.inbox.actions import notes
from conversa.inbox.models import Note
from conversa.inbox.selectors_notes import conversation_notes
from conversa.inbox.selectors_search import SEARCH_MAX_CHARS, search_conversations
from conversa.inbox.serializers import ConversationSerializer, conversation_list


class NoteSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField()
    mentions: serializers.Field = serializers.PrimaryKeyRelatedField(many=True, read_only=True,
                                                  help_text="The colleagues the note @mentions (notified).")

    class Meta:
        model = Note
        fields = ["id", "conversation", "author", "author_name", "body", "mentions", "created_at"]
        read_only_fields = fields

    def get_author_name(self, obj: Note) -> str:
        return display_name(obj.author)


class NoteInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=notes.NOTE_MAX_CHARS, help_text=(
        "The note. `@username` mentions a colleague of the campaign (an agent or supervisor), "
        "who is notified. Never sent to the customer."))


class NotesView(APIView):
    """Private notes of a conversation the user may see: visible to its agents and supervisors only."""

    @extend_schema(responses=NoteSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        conversation = selectors.get_visible_conversation(current_user(request), pk)
        return Response(NoteSerializer(conversation_notes(conversation), many=True).data)

    @extend_schema(request=NoteInputSerializer, responses={201: NoteSerializer})
    def post(self, request: Request, pk: int) -> Response:
        data = NoteInputSerializer(data=request_object(request))
        data.is_valid(raise_exception=True)
        note = notes.add_note(conversation_id=pk, author=current_user(request), body=data.validated_data["body"])
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class ConversationSearchView(APIView):
    """Conversations the user may open (closed ones included) whose customer's name or phone, or a
    message's text, matches `q`; the latest 50, latest activity first."""

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True, description=(
        f"Words of a name, digits of a phone, or words of a message (at most {SEARCH_MAX_CHARS} characters)."))],
        responses=ConversationSerializer(many=True))
    def get(self, request: Request) -> Response:
        found = search_conversations(current_user(request), text=request.query_params.get("q", ""))
        return Response(conversation_list(found))
