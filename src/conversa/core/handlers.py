"""Django's ASGI handler with a request's synchronous work done in one thread hop (issue 9).

Django's own ASGIHandler runs each `MiddlewareMixin` middleware's `process_request` and
`process_response` (and `process_view`) through `sync_to_async`, one hop to the request's thread
and back to the event loop per call: about 17 per request with our middleware, before and after
a view that is synchronous anyway. On the shared 2-core production shape those hops were a few
milliseconds of every read. Here the middleware chain is built synchronously, as under WSGI and
in the test client, and run with the view in a single `sync_to_async` call; the request's start
and finish signals are Django's own (one hop each).

A middleware that cannot run synchronously (ServeStatic's is async-only) is left out of this
chain; the requests it answers, static files under STATIC_URL, are routed to Django's standard
handler with the whole MIDDLEWARE list by `conversa.asgi`.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string


def synchronous_middleware() -> list[str]:
    """MIDDLEWARE without what cannot run synchronously, in order."""
    return [path for path in settings.MIDDLEWARE if getattr(import_string(path), "sync_capable", True)]


class OneHopASGIHandler(ASGIHandler):  # type: ignore[misc]
    def load_middleware(self, is_async: bool = False) -> None:
        """BaseHandler.load_middleware's synchronous case over `synchronous_middleware()`."""
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for path in reversed(synchronous_middleware()):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        # The whole chain and the view in the request's thread (ThreadSensitiveContext), at once.
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response
