"""Bulk send pages for supervisors and admins: the list, the new-send form with its preview, the job
page with its live progress, pause / resume / cancel, and the per-recipient CSV. Thin: reads in
outreach.selectors, writes in outreach.actions."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversa.accounts.selectors import display_name, is_supervisor
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.exports import safe_cell
from conversa.contacts.models import ContactDatabase
from conversa.core.errors import DomainError, InvalidInput
from conversa.outreach import actions, selectors, sources
from conversa.outreach.models import BulkRecipient, BulkSend
from conversa.whatsapp.models import MessageTemplate

RECIPIENTS_PAGE = 100
ViewFunc = Callable[..., HttpResponseBase]


def bulk_view(view: ViewFunc) -> ViewFunc:
    """Login required, supervisors and admins only (agents get 403); domain errors come back as
    their status with the message."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_supervisor(request.user):
            return HttpResponseForbidden(render(request, "reports/forbidden.html").content)
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return render(request, "reports/error.html", {"message": exc.message}, status=exc.status_code)

    return login_required(wrapper)


def _base(request: HttpRequest) -> dict[str, Any]:
    return {"me_name": display_name(request.user), "section": "bulk"}


@bulk_view
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = list(selectors.jobs_for(request.user)[:100])
    figures = selectors.progress(job_ids=[j.pk for j in jobs])
    return render(request, "outreach/list.html", {**_base(request), "rows": [(j, figures[j.pk]) for j in jobs]})


def _form_choices(user: User) -> dict[str, Any]:
    lines = list(selectors.bulk_lines(user).order_by("name"))
    templates = (MessageTemplate.objects.filter(line__in=lines, status=MessageTemplate.Status.APPROVED)
                 .select_related("line").order_by("line__name", "name"))
    campaigns = campaigns_for(user)
    return {"lines": lines, "templates": templates, "campaigns": campaigns.order_by("name"),
            "databases": ContactDatabase.objects.filter(campaigns__in=campaigns).distinct().order_by("name")}


def _int(value: str | None, *, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError as exc:
        raise InvalidInput(f"{field}: not a number.", field=field) from exc


def _request_from(request: HttpRequest) -> selectors.BulkRequest:
    post = request.POST
    params_text = post.get("params", "")
    return selectors.BulkRequest(
        name=post.get("name", ""), line_id=_int(post.get("line"), field="line") or 0,
        template_id=_int(post.get("template"), field="template") or 0,
        params=[p.strip() for p in params_text.splitlines() if p.strip()],
        source=post.get("source", ""), campaign_id=_int(post.get("campaign"), field="campaign"),
        database_id=_int(post.get("database"), field="database"),
        contact_filter=sources.ContactFilter(text=post.get("filter_text", "").strip(),
                                             field=post.get("filter_field", "").strip(),
                                             value=post.get("filter_value", "").strip()),
        csv_file=request.FILES.get("file"), skip_open_conversations=post.get("skip_open") == "on",
        rate_per_second=_int(post.get("rate"), field="rate_per_second"), header_file=request.FILES.get("header_file"),
        button_params=[p.strip() for p in post.get("button_params", "").splitlines() if p.strip()])


@bulk_view
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    context = {**_base(request), **_form_choices(user), "form": request.POST,
               "default_rate": BulkSend._meta.get_field("rate_per_second").get_default()}
    if request.method == "POST":
        try:
            job = actions.create_bulk_send(user=user, request=_request_from(request))
        except InvalidInput as exc:
            return render(request, "outreach/new.html", {**context, "error": exc}, status=400)
        return redirect("bulk-job", pk=job.pk)
    return render(request, "outreach/new.html", context)


@bulk_view
@require_POST
def job_preview(request: HttpRequest) -> HttpResponse:
    """The form's preview (htmx): the count and the first rendered messages, or what is wrong."""
    try:
        plan = selectors.plan_bulk_send(user=request.user, request=_request_from(request))  # type: ignore[arg-type]
    except InvalidInput as exc:
        return render(request, "outreach/_preview.html", {"error": exc})
    reasons = dict(BulkRecipient.Reason.choices)
    skipped = [(reasons.get(reason, reason), n) for reason, n in sorted(plan.skipped.items())]
    return render(request, "outreach/_preview.html", {"plan": plan, "skipped": skipped})


def _job_context(request: HttpRequest, job: BulkSend) -> dict[str, Any]:
    figures = selectors.progress(job_ids=[job.pk])[job.pk]
    reasons = dict(BulkRecipient.Reason.choices)
    return {"job": job, "p": figures, "now": timezone.now(),
            "skipped": [(reasons.get(reason, reason), n) for reason, n in sorted(figures.by_reason.items())]}


@bulk_view
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.get_job(user=request.user, job_id=pk)
    status = request.GET.get("status", "")
    if status not in {"", "sent", *BulkRecipient.Status.values}:
        raise InvalidInput("status: unknown value.", field="status")
    page = Paginator(selectors.recipients_of(job=job, status=status), RECIPIENTS_PAGE).get_page(request.GET.get("page"))
    return render(request, "outreach/job.html", {**_base(request), **_job_context(request, job), "page": page,
                                                 "status_filter": status,
                                                 "statuses": BulkRecipient.Status.choices})


@bulk_view
@require_GET
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.get_job(user=request.user, job_id=pk)
    return render(request, "outreach/_progress.html", _job_context(request, job))


@bulk_view
@require_POST
def job_control(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    {"pause": actions.pause_bulk_send, "resume": actions.resume_bulk_send,
     "cancel": actions.cancel_bulk_send}[verb](user=user, job_id=pk)
    return redirect("bulk-job", pk=pk)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(job: BulkSend) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(["row", "phone", "contact", "status", "reason", "error_code", "error",
                                      "sent_at", "provider_message_id", "replied_at", "reply_conversation"])
    for r in selectors.recipients_of(job=job).iterator(chunk_size=2000):
        # Cells a spreadsheet would run as a formula are defused (customers' names, phones as given).
        yield writer.writerow([safe_cell(v) for v in (
            r.row, r.phone, r.contact.full_name if r.contact else "", r.status, r.reason, r.error_code,
            r.error_title, r.sent_at.isoformat() if r.sent_at else "", r.provider_message_id or "",
            r.replied_at.isoformat() if r.replied_at else "", r.reply_conversation_id or "")])


@bulk_view
@require_GET
def job_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    job = selectors.get_job(user=request.user, job_id=pk)
    response = StreamingHttpResponse(_csv_lines(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bulk-send-{job.pk}.csv"'
    return response
