"""Provider callbacks: verify, store the raw event, answer 200 fast. Parsing happens in a task."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import WebhookRejected
from conversa.whatsapp.models import Line
from conversa.whatsapp.services import store_webhook

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _line(kind: str, line_id: int) -> Line | None:
    return Line.objects.select_related("provider").filter(pk=line_id, provider__kind=kind).first()


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, kind: str, line_id: int) -> HttpResponse:
    line = _line(kind, line_id)
    if line is None:
        return JsonResponse({"detail": "Unknown line."}, status=404)
    adapter = get_adapter(line)
    query = {k: str(v) for k, v in request.GET.items()}
    if request.method == "GET":
        challenge = adapter.handshake(query)
        if challenge is None:
            return HttpResponse("Verification failed.", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    body = request.body
    if len(body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"detail": "Payload too large."}, status=413)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        adapter.verify(headers=headers, body=body, query=query)
    except WebhookRejected as exc:
        return JsonResponse({"detail": str(exc)}, status=401)
    try:
        json.loads(body)
    except ValueError:
        return JsonResponse({"detail": "Body is not JSON."}, status=400)
    event, created = store_webhook(line, body, headers)
    return JsonResponse({"status": "stored" if created else "duplicate", "event": event.pk})
