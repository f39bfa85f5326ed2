"""Django's ASGI handler with a request's synchronous work done in one thread hop (issue 9).

Django's own ASGIHandler runs each `MiddlewareMixin` middleware's `process_request` and
`process_response` (and `process_view`) through `sync_to_async`, one hop to the request's thread
and back to the event loop per call: about 17 per request with our middleware, before and after
a view that is synchronous anyway. On the shared 2-core production shape those hops were a few
milliseconds of every read. Here Django's own loader builds the chain synchronously, as under
WSGI and in the test client, and it runs with the view in a single `sync_to_async` call; the
request's start and finish signals are Django's (one hop each). A middleware that can only run
asynchronously would still be adapted by Django's rules (its own hops), never dropped.

The static-file middleware (ServeStatic's is async-only) is the one left out: the requests it
answers, paths under STATIC_URL, are routed by `conversa.asgi` to Django's standard handler with
the whole MIDDLEWARE list.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase

# Middleware that serves static files: run only for STATIC_URL paths (conversa.asgi).
STATIC_FILE_MIDDLEWARE = ("servestatic.middleware.ServeStaticMiddleware",)


def one_hop_middleware() -> list[str]:
    """MIDDLEWARE without the static-file middleware, in order."""
    return [path for path in settings.MIDDLEWARE if path not in STATIC_FILE_MIDDLEWARE]


class OneHopASGIHandler(ASGIHandler):  # type: ignore[misc]
    def load_middleware(self, is_async: bool = False) -> None:
        """Django's synchronous loading (adapting, as it does, anything that cannot run synchronously)
        of `one_hop_middleware()`: BaseHandler reads the list from settings, so it is set for the
        call (once, when the process imports the application, before it serves anything)."""
        every = settings.MIDDLEWARE
        settings.MIDDLEWARE = one_hop_middleware()
        try:
            BaseHandler.load_middleware(self, is_async=False)
        finally:
            settings.MIDDLEWARE = every

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        # The whole chain and the view in the request's thread (ThreadSensitiveContext), at once.
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response
