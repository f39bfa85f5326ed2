"""Supervisor pages: the live dashboard and the reports. Thin: every read is in reports.selectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from conversa.accounts.selectors import display_name, is_supervisor
from conversa.core.api import parse_id
from conversa.core.errors import DomainError
from conversa.outreach.selectors import bulk_totals
from conversa.reports import exports, selectors
from conversa.reports.status_time import status_time

PAGE_SIZE = 50
ViewFunc = Callable[..., HttpResponse | StreamingHttpResponse]


def supervisor_view(view: ViewFunc) -> ViewFunc:
    """Login required, GET only, supervisors and admins only (agents get 403); domain errors
    (a bad date, someone else's campaign) come back with their status and message."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        if not is_supervisor(request.user):
            return HttpResponseForbidden(render(request, "reports/forbidden.html").content)
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return render(request, "reports/error.html", {"message": exc.message}, status=exc.status_code)

    return login_required(require_GET(wrapper))


def _live_context(request: HttpRequest) -> dict[str, Any]:
    now = timezone.now()
    return {"live": selectors.live_snapshot(selectors.reportable_campaigns(request.user), now=now), "now": now}


@supervisor_view
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _live_context(request)
    context["me_name"] = display_name(request.user)
    context["section"] = "live"
    context["js_strings"] = {"live": _("Live"), "offline": _("Reconnecting…"), "connecting": _("Connecting…")}
    return render(request, "reports/dashboard.html", context)


@supervisor_view
def live_partial(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/partials/live.html", _live_context(request))


def _filters(request: HttpRequest) -> dict[str, Any]:
    params = request.GET
    campaigns = selectors.reportable_campaigns(request.user, params.get("campaign"))
    rng = selectors.parse_range(params.get("from"), params.get("to"))
    rows = selectors.conversation_rows(campaigns, rng, agent_id=params.get("agent"), phone=params.get("phone", ""))
    return {"campaigns": campaigns, "range": rng, "rows": rows}


@supervisor_view
def reports(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    rng: selectors.DateRange = filters["range"]
    summary = selectors.summary(filters["campaigns"], rng)
    bulk = bulk_totals(campaign_ids=[s.campaign_id for s in summary], start=rng.start, end=rng.end)
    page = Paginator(filters["rows"], PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    all_campaigns = selectors.reportable_campaigns(request.user)
    return render(request, "reports/reports.html", {
        "me_name": display_name(request.user),
        "section": "reports",
        "summary": summary,
        "bulk_totals": [(s.name, bulk[s.campaign_id]) for s in summary if s.campaign_id in bulk],
        "status_time": status_time(filters["campaigns"], start=rng.start, end=rng.end,
                                   agent_id=parse_id(request.GET.get("agent"), field="agent")),
        "page": page,
        "query": query.urlencode(),
        "campaign_choices": list(all_campaigns.order_by("name").values_list("pk", "name")),
        "agent_choices": selectors.report_agents(all_campaigns),
        "f": {"from": timezone.localtime(rng.start).date().isoformat(),
              "to": timezone.localtime(rng.end - timedelta(microseconds=1)).date().isoformat(),
              "campaign": request.GET.get("campaign", ""), "agent": request.GET.get("agent", ""),
              "phone": request.GET.get("phone", "")},
    })


@supervisor_view
def conversations_csv(request: HttpRequest) -> StreamingHttpResponse:
    filters = _filters(request)
    rng: selectors.DateRange = filters["range"]
    name = f"conversations-{timezone.localtime(rng.start):%Y%m%d}-{timezone.localtime(rng.end):%Y%m%d}.csv"
    response = StreamingHttpResponse(exports.csv_lines(filters["rows"]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
