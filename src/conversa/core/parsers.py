"""Request body parsers (kept apart from core.api: DRF reads DEFAULT_PARSER_CLASSES while
rest_framework.views is imported, which core.api itself imports)."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser

from conversa.core import safejson


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _lazy("The request body is too large.")
    default_code = "too_large"


def read_limited(stream: Any, *, limit: int | None = None) -> bytes:
    """At most `limit` bytes of a body (DATA_UPLOAD_MAX_MEMORY_SIZE); PayloadTooLarge beyond."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    if limit is None:  # Django's own convention: None disables the check
        return bytes(stream.read())
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge()
    return bytes(data)


class SafeJSONParser(BaseParser):
    """DRF's JSON parser through conversa.core.safejson: bounded size and depth, finite numbers."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if stream is None:
            return {}
        raw = read_limited(stream)
        try:
            return safejson.loads(codecs.decode(raw, encoding))
        except (ValueError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
