"""REST API of bulk sends (supervisors and admins): create one (JSON, or multipart with a CSV
file), list them with their progress, read one, pause / resume / cancel it. Thin: reads in
outreach.selectors, writes in outreach.actions."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.core.api import current_user, id_field, request_object
from conversa.core.parsers import SafeJSONParser
from conversa.outreach import actions, selectors, sources
from conversa.outreach.models import BulkSend


class BulkSendCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    line = id_field()
    template = id_field()
    params = serializers.ListField(child=serializers.CharField(max_length=1000, allow_blank=True), max_length=20,
                                   default=list, help_text="One text per template parameter; {placeholders} "
                                   "take each recipient's contact fields or CSV columns.")
    source = serializers.ChoiceField(choices=BulkSend.Source.choices)  # type: ignore[assignment]
    campaign = id_field(required=False, help_text="Whose general inbox replies go to (default: the line's).")
    database = id_field(required=False, help_text="Contact database (default: the campaign's).")
    filter_text = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    filter_field = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    filter_value = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    file = serializers.FileField(required=False, help_text="The CSV file (multipart), for source=csv.")
    header_file = serializers.FileField(required=False, help_text="For a template with a media header "
                                        "(multipart): the image, video or document every recipient gets.")
    button_params = serializers.ListField(
        child=serializers.CharField(max_length=1000, allow_blank=True), max_length=10, default=list,
        help_text="One value per link button with a variable URL; {placeholders} as in params.")
    skip_open_conversations = serializers.BooleanField(default=True)
    rate_per_second = serializers.IntegerField(min_value=1, max_value=selectors.MAX_RATE, required=False)


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    failed = serializers.IntegerField()
    unconfirmed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    replies = serializers.IntegerField()
    response_rate = serializers.FloatField()
    by_reason = serializers.DictField(child=serializers.IntegerField())


class BulkSendSerializer(serializers.ModelSerializer):
    progress = ProgressSerializer(read_only=True)  # set on the instance by _with_progress

    class Meta:
        model = BulkSend
        fields = ["id", "name", "line", "campaign", "template", "params", "source", "contact_database",
                  "contact_filter", "source_name", "header_kind", "header_filename", "button_params",
                  "skip_open_conversations", "rate_per_second", "status",
                  "created_at", "finished_at", "backoff_until", "backoff_reason", "progress"]
        read_only_fields = fields


def _with_progress(jobs: list[BulkSend]) -> list[BulkSend]:
    figures = selectors.progress(job_ids=[j.pk for j in jobs])
    for job in jobs:
        setattr(job, "progress", figures[job.pk])  # noqa: B010 (not a model field)
    return jobs


class BulkSendsView(APIView):
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=BulkSendSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The latest 100 bulk sends of the lines of her campaigns, newest first, with their progress."""
        user = current_user(request)
        selectors.require_bulk_access(user)
        return Response(BulkSendSerializer(_with_progress(list(selectors.jobs_for(user)[:100])), many=True).data)

    @extend_schema(request={"application/json": BulkSendCreateSerializer,
                            "multipart/form-data": BulkSendCreateSerializer},
                   responses={201: BulkSendSerializer})
    def post(self, request: Request) -> Response:
        """Create a bulk send and start it: every recipient is stored (skipped ones with their reason)
        before anything is sent."""
        user = current_user(request)
        selectors.require_bulk_access(user)
        if hasattr(request.data, "getlist"):  # a form (multipart, with the CSV file): one value a key
            body = {key: request.data.get(key) for key in request.data}
            body["params"] = request.data.getlist("params")
            body["button_params"] = request.data.getlist("button_params")
        else:
            body = request_object(request)
        payload = BulkSendCreateSerializer(data=body)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        job = actions.create_bulk_send(user=user, request=selectors.BulkRequest(
            name=data["name"], line_id=data["line"], template_id=data["template"], params=data["params"],
            source=data["source"], campaign_id=data.get("campaign"), database_id=data.get("database"),
            contact_filter=sources.ContactFilter(text=data["filter_text"], field=data["filter_field"],
                                                 value=data["filter_value"]),
            csv_file=data.get("file"), skip_open_conversations=data["skip_open_conversations"],
            rate_per_second=data.get("rate_per_second"), header_file=data.get("header_file"),
            button_params=data["button_params"]))
        return Response(BulkSendSerializer(_with_progress([job])[0]).data, status=status.HTTP_201_CREATED)


class BulkSendDetailView(APIView):
    @extend_schema(responses=BulkSendSerializer)
    def get(self, request: Request, pk: int) -> Response:
        job = selectors.get_job(user=current_user(request), job_id=pk)
        return Response(BulkSendSerializer(_with_progress([job])[0]).data)


class BulkSendControlView(APIView):
    """Pause (after the round in flight), resume, or cancel (the recipients not yet claimed are
    skipped as cancelled); 409 when the job is not in a state that allows it."""

    verb = ""

    @extend_schema(request=None, responses={200: BulkSendSerializer,
                                            409: OpenApiResponse(description="Not allowed now")})
    def post(self, request: Request, pk: int) -> Response:
        act = {"pause": actions.pause_bulk_send, "resume": actions.resume_bulk_send,
               "cancel": actions.cancel_bulk_send}[self.verb]
        return Response(BulkSendSerializer(_with_progress([act(user=current_user(request), job_id=pk)])[0]).data)
