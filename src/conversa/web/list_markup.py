"""The console's inbox rows as markup built in Python (decisions #62), from the rows
`web/views_lists.py` computes: the templates print each row's `html`. The same HTML the templates
printed, byte for byte, without ~15 template lookups and conditions per row; every value goes
through `printed` (the template's `{{ }}`), so customer text is escaped as before."""

from __future__ import annotations

from typing import Any

from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from conversa.web.thread_markup import printed


class _Labels:
    """The rows' fixed texts, translated once per page (`{% translate %}` prints them as they are)."""

    def __init__(self) -> None:
        self.waiting = gettext("Waiting since the customer’s message")  # noqa: RUF001 - the msgid's own
        self.capture = gettext("Capture")
        self.unread = gettext("Unread messages")
        self.expired = gettext("Expired")
        self.expired_title = gettext(
            "The 24-hour window closed unanswered: send an approved template to reactivate it.")


def _link(r: dict[str, Any]) -> str:
    current = ' aria-current="true"' if r["selected"] else ""
    return f'<a class="row-open" href="{printed(r["url"])}" data-open-conversation="{printed(r["id"])}"{current}>'


def _name(r: dict[str, Any], t: _Labels) -> str:
    expired = (f'<span class="row-expired" title="{t.expired_title}">{t.expired}</span>' if r["expired"] else "")
    return f'<span class="row-top"><span class="row-name">{printed(r["name"])}</span>{expired}'


def _sub_and_preview(r: dict[str, Any]) -> str:
    phone = "" if r["identified"] else f'<span class="row-phone">{printed(r["phone"])}</span> · '
    campaign = printed(r["campaign_name"])
    return (f'        <span class="row-sub">{phone}<span class="row-campaign">{campaign}</span></span>\n'
            f'        <span class="row-preview">{printed(r["preview"])}</span>\n      </a>\n')


def _new_row(r: dict[str, Any], t: _Labels) -> str:
    selected, pk = (" selected" if r["selected"] else ""), printed(r["id"])
    return (f'\n    <li class="row{selected}" id="row-new-{pk}" data-conversation-id="{pk}">\n'
            f'      {_link(r)}\n        {_name(r, t)}\n'
            f'          <time class="waiting" data-since="{printed(r["waiting_since"])}" title="{t.waiting}"></time>'
            f'</span>\n{_sub_and_preview(r)}'
            f'      <button type="button" class="capture" hx-post="{printed(r["capture_url"])}" hx-swap="none" '
            f'hx-disabled-elt="this" title="{t.capture}" aria-label="{printed(r["capture_label"])}">'
            f'<span aria-hidden="true">⇩</span> {t.capture}</button>\n    </li>\n  ')


def _mine_row(r: dict[str, Any], t: _Labels) -> str:
    unread = " has-unread" if r["unread_count"] else ""
    selected = " selected" if r["selected"] else ""
    waiting = (f'<time class="waiting" data-since="{printed(r["waiting_since"])}" title="{t.waiting}"></time>'
               if r["waiting_since"] else "")
    count = (f'<span class="unread-count" title="{t.unread}">{printed(r["unread_count"])}</span>'
             if r["unread_count"] else "")
    return (f'\n    <li class="row{unread}{selected}" id="row-mine-{printed(r["id"])}" '
            f'data-conversation-id="{printed(r["id"])}">\n      {_link(r)}\n        {_name(r, t)}\n'
            f'          {waiting}</span>\n{_sub_and_preview(r)}      {count}\n    </li>\n  ')


def _closed_row(r: dict[str, Any]) -> str:
    selected, pk = (" selected" if r["selected"] else ""), printed(r["id"])
    return (f'\n    <li class="row{selected}" id="row-closed-{pk}" data-conversation-id="{pk}">\n'
            f'      {_link(r)}\n        <span class="row-top"><span class="row-name">{printed(r["name"])}</span>'
            f'</span>\n'
            f'{_sub_and_preview(r)}    </li>\n')


def with_markup(rows: list[dict[str, Any]], *, tab: str) -> list[dict[str, Any]]:
    """`rows` of the tab `new`, `mine` or `closed`, each given its `html`."""
    labels = _Labels()
    for r in rows:
        html = _new_row(r, labels) if tab == "new" else _mine_row(r, labels) if tab == "mine" else _closed_row(r)
        r["html"] = mark_safe(html)  # noqa: S308 - built escaped
    return rows


