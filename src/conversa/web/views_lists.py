"""The console's inbox lists: one keyset page of each inbox, its rows computed once per page so
the template only prints (decisions #47), each row's markup built in Python (#62)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from conversa.core.errors import NotAllowed
from conversa.inbox import selectors, selectors_search
from conversa.inbox.models import Conversation
from conversa.inbox.selectors import Page, customer_name_of, row_values
from conversa.web.list_markup import with_markup


def id_url(name: str) -> Callable[[int], str]:
    """reverse(name, args=[pk]) for many pks at the cost of one reverse: the lists link every row."""
    sentinel = "2147483647"
    head, _sep, tail = reverse(name, args=[int(sentinel)]).rpartition(sentinel)
    return lambda pk: f"{head}{pk}{tail}"


def _rows(conversations: list[dict[str, Any]], *, open_id: int | None = None) -> list[dict[str, Any]]:
    """The lists' rows (plain rows of the inbox selectors' `*_values`) with everything they show
    computed here, once per page: the template only prints (a URL reverse, a translation or a
    filter per row was most of the page's cost).

    `open_id`: the conversation the agent has open is rendered selected and read (she is reading
    it: its mark-read follows, and a badge in between would flash on the row she looks at)."""
    open_url, capture_url = id_url("console-conversation"), id_url("console-capture")
    capture_label = _("Capture the conversation with %(name)s")
    new = Conversation.Status.NEW
    rows = []
    for c in conversations:
        pk, inbound, last = c["id"], c["last_inbound_at"], c["last_message_at"]
        waiting_since = None
        if inbound and last and inbound >= last:
            waiting_since = inbound  # the customer wrote last: she is waiting
        elif c["status"] == new:
            waiting_since = inbound or c["created_at"]
        identified = c["contact_id"] is not None
        customer_name = customer_name_of(c)
        rows.append({
            "id": str(pk), "url": open_url(pk), "capture_url": capture_url(pk),
            "name": customer_name if identified else (customer_name or c["customer_phone"] or c["customer_user_id"]),
            "identified": identified,
            "phone": c["customer_phone"] or c["customer_username"], "campaign_name": c["campaign_name"],
            "preview": c["last_message_preview"], "unread_count": 0 if pk == open_id else c["unread_count"],
            "selected": pk == open_id,
            "waiting_since": waiting_since.isoformat() if waiting_since else "",
            "expired": c["expired"], "is_closed": c["status"] == Conversation.Status.CLOSED,
            "capture_label": mark_safe(capture_label % {  # noqa: S308 - the name is escaped
                "name": conditional_escape(customer_name or c["customer_phone"])}),
        })
    return rows


def inbox_context(user: AbstractBaseUser, *, open_id: int | None = None) -> dict[str, Any]:
    # One keyset page of each (no counts): the badges read the page, "50+" when it continues, and
    # the unread badge sums the counts kept on each conversation. 50 rows: the oldest waiting and
    # her latest (rendering rows is the page's cost; the API pages through the rest).
    try:
        new_page = selectors.general_inbox_values(user, limit=50)
        mine_page = selectors.personal_inbox_values(user, limit=50)
    except NotAllowed as exc:
        return {"no_access": exc.message, "new": [], "mine": [], "mine_unread": 0, "closed": []}
    mine = with_markup(_rows(mine_page.rows, open_id=open_id), tab="mine")
    closed = closed_rows(selectors_search.closed_conversations_values(user, limit=50), open_id=open_id)
    new = with_markup(_rows(new_page.rows, open_id=open_id), tab="new")
    return {**closed, "new": new, "new_more": new_page.cursor is not None,
            "mine": mine, "mine_more": mine_page.cursor is not None,
            "mine_unread": sum(r["unread_count"] for r in mine), "no_access": ""}


def rows_of(conversations: list[Conversation]) -> list[dict[str, Any]]:
    """Rows of conversations found (search results, the Closed tab) as the lists show them."""
    return _rows([row_values(c) for c in conversations])


def closed_rows(page: Page[dict[str, Any]], *, open_id: int | None = None) -> dict[str, Any]:
    """The Closed tab's rows and the link to its next page (keyset: `?after=` the page's cursor)."""
    more_url = f"{reverse('console-closed')}?after={page.cursor.encode()}" if page.cursor is not None else ""
    return {"closed": with_markup(_rows(page.rows, open_id=open_id), tab="closed"), "closed_more_url": more_url}
