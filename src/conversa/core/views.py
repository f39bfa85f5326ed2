"""Operational endpoints."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db import connection
from django.db.utils import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from conversa.core import media
from conversa.core.health import health_readings


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 when the database answers and no registered reading
    reports a problem (core's task workers alive, whatsapp's webhook backlog under its limits);
    503 otherwise, with `problems` saying why. Every reading is in the body either way."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        readings = health_readings()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc)[:200],
                             "problems": ["database unreachable"]}, status=503)
    problems = [f"{name}: {reading.problem}" for name, reading in readings.items() if reading.problem]
    body = {"status": "error" if problems else "ok", "database": "ok", "problems": problems,
            **{name: reading.value for name, reading in readings.items()}}
    return JsonResponse(body, status=503 if problems else 200)


@require_GET
def media_link(request: HttpRequest, token: str) -> HttpResponseBase:
    """One stored file named by a signed, expiring token (conversa.core.media.signed_url): how
    providers fetch the media we send, and the sandbox simulator shows it. No login; the token
    is the permission. Served with the same safe headers as every media response."""
    linked = media.linked_file(token)
    if linked is None or not default_storage.exists(linked.storage_name):
        raise Http404("Unknown or expired media link.")
    return media.media_response(storage_name=linked.storage_name, display_name=linked.display_name,
                                range_header=media.requested_range(request))
