"""API plumbing shared by every app: the error envelope, the JSON parser, the schema's error component.

Every 4xx of the API (domain errors, DRF validation, authentication, throttling, bad bodies) has one
shape: {"code", "message", "detail", "field"?, "extra"?}. `detail` repeats `message` (DRF's and our
older clients read it); `field` names the input at fault (dotted for nested ones: "contact.email",
"params[1]"); `extra` carries machine-readable context (e.g. the agent holding a conversation).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import exceptions as django_exceptions
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import ISO_8601, exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from conversa.core.errors import DomainError, InvalidInput
from conversa.core.parsers import PayloadTooLarge, SafeJSONParser, read_limited


def current_user(request: Request) -> User:
    """The authenticated user of an API request (views require authentication)."""
    if not isinstance(request.user, User):
        raise exceptions.NotAuthenticated()
    return request.user


# --------------------------------------------------------------------------- the envelope
def error_body(*, code: str, message: str, field: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "detail": message}
    if field:
        body["field"] = field
    if extra:
        body["extra"] = extra
    return body


def error_response(*, status_code: int, code: str, message: str, field: str | None = None,
                   extra: dict[str, Any] | None = None) -> JsonResponse:
    """The envelope from plain Django views (webhooks, the simulator)."""
    return JsonResponse(error_body(code=code, message=message, field=field, extra=extra), status=status_code)


def _flatten(detail: Any, path: str = "") -> list[tuple[str, str]]:
    """DRF's nested validation errors as (dotted field path, message) pairs, in order."""
    if isinstance(detail, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in detail.items():
            if key == "non_field_errors" or key == settings.REST_FRAMEWORK.get("NON_FIELD_ERRORS_KEY"):
                sub = path
            elif isinstance(key, int) or str(key).isdigit():
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            pairs += _flatten(value, sub)
        return pairs
    if isinstance(detail, list):
        pairs = []
        for index, value in enumerate(detail):
            # A list of messages belongs to `path`; a list of objects (many=True) is indexed.
            pairs += _flatten(value, f"{path}[{index}]" if isinstance(value, dict) else path)
        return pairs
    return [(path, str(detail))]


def _validation_body(exc: exceptions.ValidationError) -> dict[str, Any]:
    pairs = _flatten(exc.detail)
    if not pairs:
        return error_body(code="invalid", message=str(exceptions.ValidationError.default_detail))
    field, message = pairs[0]
    errors: dict[str, list[str]] = {}
    for path, text in pairs:
        errors.setdefault(path or "body", []).append(text)
    return error_body(code="invalid", message=f"{field}: {message}" if field else message, field=field or None,
                      extra={"errors": errors})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After) with every body in the envelope."""
    if isinstance(exc, DomainError):
        return Response(error_body(code=exc.code, message=exc.message, field=exc.field, extra=exc.extra),
                        status=exc.status_code)
    if isinstance(exc, django_exceptions.RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, django_exceptions.TooManyFieldsSent | django_exceptions.TooManyFilesSent):
        exc = exceptions.ParseError(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, django_exceptions.PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc)
        return response
    detail = exc.detail
    code = getattr(detail, "code", None) or exc.default_code
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    extra = {"wait": wait} if wait is not None else None
    response.data = error_body(code=str(code), message=str(detail), extra=extra)
    return response


# --------------------------------------------------------------------------- request bodies
def request_object(request: Request, *, name: str = "body") -> dict[str, Any]:
    """The request body when it is an object; a 400 naming it otherwise (`null`, a string, a list)."""
    data = request.data
    if hasattr(data, "dict") and not isinstance(data, dict):
        data = data.dict()  # a QueryDict from a form post
    if not isinstance(data, dict):
        raise InvalidInput(_("The request body must be a JSON object."), field=name)
    return dict(data)


# --------------------------------------------------------------------------- request fields
# Primary keys are 64-bit: a larger number is bad input, not a database overflow.
MAX_ID = 2**63 - 1


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def parse_id(value: Any, *, field: str) -> int | None:
    """A query parameter holding an id: None when absent, a 400 naming `field` when not an id."""
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_ID:
        raise InvalidInput(_("%(field)s must be an id (a positive whole number).") % {"field": field}, field=field)
    return number


def datetime_writer() -> Callable[[datetime | None], str | None]:
    """DateTimeField().to_representation with the current time zone looked up once per page, not per
    value; the API's settings keep DRF's default ISO 8601 (anything else: DRF's own field)."""
    if str(api_settings.DATETIME_FORMAT).lower() != ISO_8601:
        return serializers.DateTimeField().to_representation  # type: ignore[return-value]
    zone = timezone.get_current_timezone()
    # Times already in the zone need no conversion (half of this function's cost per value): the
    # zone's own tzinfo, or UTC's as SQLite's converter sets it when the zone is UTC.
    in_zone = {zone, UTC} if str(zone) == "UTC" else {zone}

    def iso(value: datetime | None) -> str | None:
        if not value:
            return None
        if value.tzinfo in in_zone:
            text = value.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        if not timezone.is_aware(value):
            return serializers.DateTimeField().to_representation(value)  # type: ignore[no-any-return]
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with its time zone: a naive time is ambiguous, so it is refused, not guessed."""

    default_error_messages = {"naive": _lazy("Include the time zone (e.g. 2030-01-01T10:00:00-03:00 or ...Z).")}

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # an impossible date: the parent says "wrong format"
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value)


# --------------------------------------------------------------------------- OpenAPI
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx answer of the API.",
    "required": ["code", "message", "detail"],
    "properties": {
        "code": {"type": "string", "description": "Machine-readable: invalid, not_found, conflict, ..."},
        "message": {"type": "string", "description": "Human-readable, in the request's language."},
        "detail": {"type": "string", "description": "The same text as `message` (kept for older clients)."},
        "field": {"type": "string", "description": "The input at fault, dotted when nested."},
        "extra": {"type": "object", "additionalProperties": True,
                  "description": "Context, e.g. every field's errors, or the agent holding a conversation."},
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ALWAYS = {"400": "Bad input (names the field)", "401": "Not authenticated", "403": "Not allowed",
           "404": "Not found"}
_WITH_BODY = {"413": "Body too large", "415": "Unsupported content type"}


def document_error_envelope(result: dict[str, Any], generator: Any, request: HttpRequest | None,
                            public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the Error component on every operation's 4xx."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = dict(_ALWAYS)
            if method in ("post", "put", "patch"):
                wanted.update(_WITH_BODY)
            for code in list(responses):
                if code.startswith("4"):
                    wanted.setdefault(code, responses[code].get("description", "Error"))
            for code, description in wanted.items():
                response = responses.setdefault(code, {"description": description})
                response["content"] = {"application/json": {"schema": _ERROR_REF}}
    return result


def too_large_response() -> JsonResponse:
    return error_response(status_code=413, code="too_large", message=str(PayloadTooLarge.default_detail))


__all__ = [
    "AwareDateTimeField",
    "PayloadTooLarge",
    "SafeJSONParser",
    "current_user",
    "document_error_envelope",
    "error_body",
    "error_response",
    "exception_handler",
    "id_field",
    "parse_id",
    "read_limited",
    "request_object",
    "too_large_response",
]
