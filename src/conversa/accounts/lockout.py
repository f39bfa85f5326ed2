"""What a client locked out by the login limiter (django-axes) gets: a page, or JSON for the API.

Axes calls `lockout_response` (settings.AXES_LOCKOUT_CALLABLE) when a login attempt is refused; the
attempt itself is already recorded (AccessAttempt / AccessFailureLog, visible in the admin).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_lockout_message
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

log = logging.getLogger(__name__)


class LoginLocked(exceptions.APIException):
    """The API's answer to a locked account or address (through the project's error envelope)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = _("Too many failed login attempts. Try again in a few minutes, or ask an admin to unlock you.")
    default_code = "locked_out"


def is_locked_out(*, request: Any, username: str | None) -> bool:
    """Whether the limiter refuses this account or client address now (DRF or Django request)."""
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def cooloff_minutes(*, request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds() / 60) if cool_off else 0


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    message = str(get_lockout_message())
    log.warning("login locked out: path=%s username=%r ip=%s", request.path,
                (credentials or {}).get("username"), getattr(request, "axes_ip_address", None))
    if request.path.startswith("/api/"):
        return JsonResponse({"code": LoginLocked.default_code, "message": message, "detail": message},
                            status=LoginLocked.status_code)
    return render(request, "accounts/locked_out.html",
                  {"message": message, "cooloff_minutes": cooloff_minutes(request=request)},
                  status=LoginLocked.status_code)
