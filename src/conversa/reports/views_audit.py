"""The audit log page (supervisors and admins): filters in, one page of rows out; reads in
reports.audit_log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from conversa.accounts.selectors import display_name
from conversa.reports import audit_log
from conversa.reports.views import supervisor_view


@supervisor_view
def audit_log_page(request: HttpRequest) -> HttpResponse:
    filters = audit_log.parse_filters(request.GET)
    rows, more = audit_log.audit_page(request.user, filters)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "reports/audit_log.html", {
        "rows": rows, "more": more, "f": filters.query(), "page": filters.page, "query": query.urlencode(),
        "kinds": audit_log.kind_choices(), "actors": audit_log.actor_choices(request.user),
        "section": "audit", "me_name": display_name(request.user),
    })
