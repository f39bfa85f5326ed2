"""REST API of the reports: thin views over reports.selectors. Supervisors and admins only."""

from __future__ import annotations

from dataclasses import asdict

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversa.core.api import current_user
from conversa.reports import selectors

_durations = inline_serializer("ReportDurations", {
    "count": serializers.IntegerField(),
    "median": serializers.FloatField(allow_null=True, help_text="seconds"),
    "average": serializers.FloatField(allow_null=True, help_text="seconds"),
})

SummarySerializer = inline_serializer("ReportSummary", {
    "from": serializers.DateTimeField(),
    "to": serializers.DateTimeField(help_text="exclusive"),
    "campaigns": inline_serializer("CampaignSummary", {
        "campaign_id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "messages_received": serializers.IntegerField(),
        "messages_sent": serializers.IntegerField(),
        "conversations": serializers.IntegerField(),
        "conversations_inbound": serializers.IntegerField(),
        "conversations_outbound": serializers.IntegerField(),
        "attended": serializers.IntegerField(help_text="taken by an agent at some point"),
        "not_attended": serializers.IntegerField(help_text="still waiting in the general inbox"),
        "closed": serializers.IntegerField(),
        "closed_by_system": serializers.IntegerField(),
        "expired": serializers.IntegerField(help_text="their 24-hour window closed unanswered at least once"),
        "dispositions": inline_serializer("DispositionCount", {
            "option_id": serializers.IntegerField(), "name": serializers.CharField(),
            "positive": serializers.BooleanField(), "count": serializers.IntegerField(),
        }, many=True),
        "not_dispositioned": serializers.IntegerField(),
        "first_response": _durations,
        "time_to_capture": _durations,
        "resolution": _durations,
        "agents": inline_serializer("AgentFigures", {
            "agent_id": serializers.IntegerField(), "name": serializers.CharField(),
            "conversations": serializers.IntegerField(), "messages_sent": serializers.IntegerField(),
            "closed": serializers.IntegerField(),
            "first_response_avg": serializers.FloatField(allow_null=True, help_text="seconds"),
        }, many=True),
    }, many=True),
})

LiveSerializer = inline_serializer("LiveSnapshot", {
    "at": serializers.DateTimeField(),
    "campaigns": inline_serializer("CampaignLive", {
        "campaign_id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "waiting": serializers.IntegerField(help_text="in the general inbox"),
        "longest_wait_seconds": serializers.IntegerField(allow_null=True),
        "attended": serializers.IntegerField(help_text="in agents' personal inboxes now"),
        "agents_by_status": serializers.DictField(child=serializers.IntegerField()),
        "agents": inline_serializer("AgentLive", {
            "agent_id": serializers.IntegerField(), "name": serializers.CharField(),
            "status": serializers.ChoiceField(choices=selectors.AGENT_STATUSES),
            "open": serializers.IntegerField(), "capacity": serializers.IntegerField(),
            "pause_reason": serializers.CharField(help_text="the reason of a paused agent, else empty"),
        }, many=True),
    }, many=True),
})

_forbidden = OpenApiResponse(description="Not a supervisor or administrator")


class SummaryView(APIView):
    @extend_schema(
        summary="General report per campaign",
        parameters=[
            OpenApiParameter("from", str, description="YYYY-MM-DD or ISO 8601 date-time (default: 6 days ago)"),
            OpenApiParameter("to", str, description="YYYY-MM-DD (that day included) or an exclusive ISO 8601 "
                                                    "date-time (default: end of today)"),
            OpenApiParameter("campaign", int, description="one campaign (default: all the user's)"),
        ],
        responses={200: SummarySerializer, 403: _forbidden, 404: OpenApiResponse(description="Campaign not found")},
    )
    def get(self, request: Request) -> Response:
        user = current_user(request)
        campaigns = selectors.reportable_campaigns(user, request.query_params.get("campaign"))
        rng = selectors.parse_range(request.query_params.get("from"), request.query_params.get("to"))
        rows = selectors.summary(campaigns, rng)
        return Response({"from": rng.start, "to": rng.end, "campaigns": [asdict(r) for r in rows]})


class LiveView(APIView):
    @extend_schema(summary="Live snapshot per campaign", responses={200: LiveSerializer, 403: _forbidden})
    def get(self, request: Request) -> Response:
        now = timezone.now()
        campaigns = selectors.reportable_campaigns(current_user(request))
        rows = selectors.live_snapshot(campaigns, now=now)
        return Response({"at": now, "campaigns": [asdict(r) for r in rows]})
