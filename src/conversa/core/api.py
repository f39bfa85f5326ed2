"""API plumbing shared by every app: error format."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from conversa.core.errors import DomainError


def current_user(request: Request) -> User:
    """The authenticated user of an API request (views require authentication)."""
    if not isinstance(request.user, User):
        raise NotAuthenticated()
    return request.user


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler plus our DomainError: {"detail": ..., "code": ..., "field"?: ...}."""
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
            body[exc.field] = [exc.message]
        body.update(exc.extra)
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)
