"""Provider callbacks: verify, read, store the raw event, answer 200 fast. Applying it happens in a task.

A body the adapter cannot read (not JSON, nested too deep, or nothing in it carries what identifies
a message or status) is answered 400 in the API's error envelope and not stored: stored, it would
be work that fails on every retry. Such bodies (and ones over the size limit, 413) leave a bounded
sample for admins instead (`whatsapp.rejections`).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversa.core.api import PayloadTooLarge, error_response, read_limited, too_large_response
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import MalformedPayload, WebhookRejected
from conversa.whatsapp.models import Line
from conversa.whatsapp.rejections import record_rejected_webhook
from conversa.whatsapp.services import store_webhook

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def _line(kind: str, line_id: int) -> Line | None:
    return Line.objects.select_related("provider").filter(pk=line_id, provider__kind=kind).first()


def _body_limit() -> int:
    configured = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return MAX_WEBHOOK_BYTES if configured is None else min(MAX_WEBHOOK_BYTES, configured)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, kind: str, line_id: int) -> HttpResponse:
    line = _line(kind, line_id)
    if line is None:
        return error_response(status_code=404, code="not_found", message="Unknown line.")
    adapter = get_adapter(line)
    query = {k: str(v) for k, v in request.GET.items()}
    if request.method == "GET":
        challenge = adapter.handshake(query)
        if challenge is None:
            return HttpResponse("Verification failed.", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    headers = {k.lower(): v for k, v in request.headers.items()}
    if declared > _body_limit():
        return _too_large(line, headers, declared)
    try:
        body = read_limited(request, limit=_body_limit())
    except PayloadTooLarge:
        return _too_large(line, headers, max(declared, _body_limit() + 1))
    try:
        adapter.verify(headers=headers, body=body, query=query)
    except WebhookRejected as exc:
        return error_response(status_code=401, code="not_authenticated", message=str(exc))
    try:
        parsed = adapter.read(body)
    except MalformedPayload as exc:
        record_rejected_webhook(line=line, status_code=400, reason=str(exc), headers=headers, body_start=body,
                                size=len(body), verified=True)
        return error_response(status_code=400, code="invalid", message=str(exc), field=exc.field)
    if parsed.rejected and not parsed.usable:
        first = parsed.rejected[0]
        record_rejected_webhook(line=line, status_code=400, reason=f"{first['field']}: {first['error']}",
                                headers=headers, body_start=body, size=len(body), verified=True)
        return error_response(status_code=400, code="invalid", message=first["error"], field=first["field"],
                              extra={"rejected": parsed.rejected})
    event, created = store_webhook(line, body, headers)
    return JsonResponse({"status": "stored" if created else "duplicate", "event": event.pk})


def _too_large(line: Line, headers: dict[str, str], size: int) -> HttpResponse:
    # Not read (reading megabytes to keep a few KB is the cost the limit avoids), so not verified
    # either: the sample is the headers, the size and the reason.
    record_rejected_webhook(line=line, status_code=413, reason=f"body over {_body_limit()} bytes", headers=headers,
                            body_start=b"", size=size, verified=False)
    return too_large_response()
