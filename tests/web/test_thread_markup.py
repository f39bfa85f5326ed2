"""The console's thread rows built in Python (web/thread_markup.py, decisions #62): every customer
or user string is escaped in every branch the template had; our own markup is not."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from django.utils import translation
from django.utils.safestring import mark_safe

from conversa.inbox.models import Message
from conversa.web.thread_markup import thread_rows_html

EVIL = "<script>x</script>\"'&"
ESCAPED = "&lt;script&gt;x&lt;/script&gt;&quot;&#x27;&amp;"
AT = datetime.datetime(2026, 11, 26, 14, 5, tzinfo=datetime.UTC)


def _message(**fields: object) -> Message:
    defaults: dict[str, object] = {"pk": 7, "conversation_id": 3, "direction": "in", "kind": "text",
                                   "status": "received", "created_at": AT, "payload": {}}
    return Message(**{**defaults, **fields})


def _html(*rows: object, ticks: str = "") -> str:
    return "".join(thread_rows_html([(row, ticks) for row in rows]))


def test_customer_strings_are_escaped_in_every_branch():
    rows = [
        _message(body=EVIL + "\nsecond"),
        _message(kind="document", media="media/x.pdf", media_filename=EVIL),
        _message(kind="image", media="media/x.jpg", media_filename=EVIL),
        _message(kind="image", media_provider_id="p", media_filename=EVIL,
                 payload={"media_failed": True, "media_error": EVIL}),
        _message(kind="image", media_provider_id="p", payload={"media_error": EVIL}),
        _message(kind="location", payload={"name": EVIL, "latitude": EVIL, "longitude": EVIL}),
        _message(body="now", edited_at=AT, payload={"history": [{"body": EVIL}]}),
        _message(direction="out", status="failed", body="x", error_title=EVIL, error_code=EVIL,
                 client_message_id=EVIL),
        SimpleNamespace(pk=1, sort_at=AT, note_body=EVIL, author_name=EVIL),
        SimpleNamespace(pk=2, sort_at=AT, system_line=EVIL),
    ]
    html = _html(*rows)
    assert "<script>" not in html
    assert html.count(ESCAPED) == 17, html  # each value above, the document name twice
    assert f"{ESCAPED}<br>second" in html  # line breaks kept, after escaping


def test_our_markup_and_ticks_are_printed_as_they_are():
    with translation.override("es"):
        html = _html(_message(direction="out", status="unconfirmed", resend_offered_at=AT, body="hola"),
                     ticks=mark_safe('<span class="ticks">✓</span>'))
    assert '<span class="ticks">✓</span>' in html
    assert 'data-testid="resend"' in html and 'hx-post="/console/c/3/messages/7/resend/"' in html
    assert '<div class="sender">' in html and "<time datetime=\"2026-11-26T14:05:00+00:00\"" in html
