"""Operational endpoints."""

from __future__ import annotations

import datetime

from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers: 200 when the database answers; also reports the webhook backlog
    (events stored but not processed for over a minute means no task worker is running)."""
    from conversa.whatsapp.models import WebhookEvent

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        stale = WebhookEvent.objects.filter(
            processed_at__isnull=True, received_at__lt=timezone.now() - datetime.timedelta(minutes=1)).count()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "webhook_backlog": stale})
