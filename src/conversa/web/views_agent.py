"""The agent's own status in the console header (Ready / Paused with a reason / Offline), and what a
supervisor does on an agent's conversation (join it, reassign it). Thin: accounts.services and
inbox.actions decide."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from conversa.accounts.services import set_status
from conversa.inbox.actions import supervision
from conversa.web.agent_status import status_context
from conversa.web.views import _done, _user, htmx_action, htmx_read


@htmx_read
def agent_status(request: HttpRequest) -> HttpResponse:
    return render(request, "web/partials/agent_status.html", status_context(_user(request)))


@htmx_action
def change_status(request: HttpRequest) -> HttpResponse:
    """`status`: ready, offline, paused, or paused:<reason id>."""
    status, _sep, reason = request.POST.get("status", "").partition(":")
    reason_id = int(reason) if reason.isdigit() else (0 if reason else None)
    set_status(user=_user(request), status=status, pause_reason_id=reason_id)
    return render(request, "web/partials/agent_status.html", status_context(_user(request)))


@htmx_action
def join(request: HttpRequest, pk: int) -> HttpResponse:
    """A supervisor joins an agent's conversation to write in it (announced in the thread)."""
    supervision.join(conversation_id=pk, supervisor=_user(request))
    return _done("conversa:pane")
