"""Operational endpoints."""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.storage import default_storage
from django.db import connection
from django.db.utils import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from conversa.core import media

# name → a database read reported by /healthz/ (e.g. whatsapp's "webhook_backlog"); registered by
# the apps in AppConfig.ready(), so core knows no domain app.
_health_readings: dict[str, Callable[[], int]] = {}


def register_health_reading(*, name: str, read: Callable[[], int]) -> None:
    _health_readings[name] = read


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers: 200 when the database answers; also reports the registered readings
    (whatsapp's webhook backlog: events stored but not processed for over a minute means no task
    worker is running)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        readings = {name: read() for name, read in list(_health_readings.items())}
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", **readings})


@require_GET
def media_link(request: HttpRequest, token: str) -> HttpResponseBase:
    """One stored file named by a signed, expiring token (conversa.core.media.signed_url): how
    providers fetch the media we send, and the sandbox simulator shows it. No login; the token
    is the permission. Served with the same safe headers as every media response."""
    linked = media.linked_file(token)
    if linked is None or not default_storage.exists(linked.storage_name):
        raise Http404("Unknown or expired media link.")
    return media.media_response(storage_name=linked.storage_name, display_name=linked.display_name)
