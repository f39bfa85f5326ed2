"""Domain errors. The API maps each to its HTTP status with a clear message."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class NotAllowed(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class WindowClosed(DomainError):
    status_code = 422
    code = "window_closed"
