"""Provider callbacks through Django: the GET handshake, and POSTs as a batch of one for the intake
(`whatsapp.intake`: verify, read, store the raw event, answer 200 once committed). In production
POSTs take the ASGI fast path (`whatsapp.fast_intake`) before reaching Django; this view is the
same intake for every other server (the test client, WSGI).

A body the adapter cannot read (not JSON, nested too deep, or nothing in it carries what identifies
a message or status) is answered 400 in the API's error envelope and not stored: stored, it would
be work that fails on every retry. Such bodies (and ones over the size limit, 413) leave a bounded
sample for admins instead (`whatsapp.rejections`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conversa.core.api import PayloadTooLarge, error_response, read_limited
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.intake import IncomingWebhook, WebhookAnswer, receive_webhooks, webhook_body_limit
from conversa.whatsapp.models import Line


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook(request: HttpRequest, kind: str, line_id: int) -> HttpResponse:
    query = {k: str(v) for k, v in request.GET.items()}
    if request.method == "GET":
        line = Line.objects.select_related("provider").filter(pk=line_id, provider__kind=kind).first()
        if line is None:
            return error_response(status_code=404, code="not_found", message="Unknown line.")
        challenge = get_adapter(line).handshake(query)
        if challenge is None:
            return HttpResponse("Verification failed.", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    headers = {k.lower(): v for k, v in request.headers.items()}
    limit = webhook_body_limit()
    too_large: int | None = declared if declared > limit else None
    body = b""
    if too_large is None:
        try:
            body = read_limited(request, limit=limit)
        except PayloadTooLarge:
            too_large = max(declared, limit + 1)
    incoming = IncomingWebhook(kind=kind, line_id=line_id, headers=headers, query=query, body=body,
                               too_large=too_large)
    return as_response(receive_webhooks(requests=[incoming])[0])


def as_response(answer: WebhookAnswer) -> HttpResponse:
    response = HttpResponse(answer.content, status=answer.status, content_type="application/json")
    for name, value in answer.headers.items():
        response[name] = value
    return response
