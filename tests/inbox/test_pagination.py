"""Keyset pagination of the inboxes and the thread (issue 9): every row exactly once across pages,
ties on timestamps, rows arriving or leaving between pages, bad cursors named, visibility unchanged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from conversa.inbox.keyset import Cursor
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line

BASE = timezone.now() - timedelta(days=2)


def _conversations(line: Line, times: list[Any], *, phone_prefix: str, **fields: Any) -> list[Conversation]:
    """One conversation per entry of `times` (its last_message_at; repeated values are ties)."""
    return Conversation.objects.bulk_create([
        Conversation(line=line, campaign=line.campaign, customer_phone=f"{phone_prefix}{i:04d}",
                     last_message_at=at, last_message_preview=f"m{i}", **fields)
        for i, at in enumerate(times)
    ])


def _walk(client: APIClient, url: str, *, limit: int, max_pages: int = 100) -> list[list[int]]:
    """Every page of an inbox, following `next`."""
    pages: list[list[int]] = []
    next_url: str | None = f"{url}?limit={limit}"
    while next_url and len(pages) < max_pages:
        response = client.get(next_url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "results"}
        assert len(body["results"]) <= limit
        pages.append([c["id"] for c in body["results"]])
        next_url = body["next"]
    assert next_url is None, "more pages than expected"
    return pages


def _flat(pages: list[list[int]]) -> list[int]:
    return [pk for page in pages for pk in page]


def test_general_inbox_pages_hold_every_conversation_once_in_order_across_campaigns(api, demo):
    # Ties: three conversations per timestamp, in two campaigns (agent3 works on both); two
    # without any message time yet (they sort last).
    times = [BASE + timedelta(minutes=i // 3) for i in range(30)]
    sales = _conversations(demo["sales_line"], times, phone_prefix="+54911000")
    support = _conversations(demo["support_line"], times[::2], phone_prefix="+54911100")
    unset = _conversations(demo["sales_line"], [None, None], phone_prefix="+54911200")
    _conversations(demo["sales_line"], times[:5], phone_prefix="+54911300", status="attended")  # not new
    everything = sales + support
    expected = [c.pk for c in sorted(everything, key=lambda c: (c.last_message_at, c.pk))] + [c.pk for c in unset]

    pages = _walk(api("agent3"), "/api/v1/inbox/general/", limit=7)
    assert _flat(pages) == expected
    assert all(len(page) == 7 for page in pages[:-1])
    # agent1 works on Sales only: the same order restricted to it.
    sales_only = [pk for pk in expected if pk not in {c.pk for c in support}]
    assert _flat(_walk(api("agent1"), "/api/v1/inbox/general/", limit=4)) == sales_only


def test_general_inbox_conversations_arriving_or_captured_between_pages_cause_no_gaps_or_duplicates(api, demo):
    times = [BASE + timedelta(minutes=i // 2) for i in range(20)]
    rows = _conversations(demo["sales_line"], times, phone_prefix="+54911000")
    client = api("agent1")
    first = client.get("/api/v1/inbox/general/?limit=6").json()
    assert [c["id"] for c in first["results"]] == [c.pk for c in rows[:6]]
    # Meanwhile: one further down is captured, a new one arrives (latest activity), and one shown
    # on page one is captured too.
    captured_later, captured_shown = rows[10], rows[2]
    Conversation.objects.filter(pk__in=[captured_later.pk, captured_shown.pk]).update(
        status="attended", agent=get_user_model().objects.get(username="agent2"))
    [arrived] = _conversations(demo["sales_line"], [timezone.now()], phone_prefix="+54911900")
    rest: list[int] = []
    next_url = first["next"]
    while next_url:
        body = client.get(next_url).json()
        rest += [c["id"] for c in body["results"]]
        next_url = body["next"]
    assert rest == [c.pk for c in rows[6:] if c.pk != captured_later.pk] + [arrived.pk]
    assert not set(rest) & {c["id"] for c in first["results"]}


def test_personal_inbox_pages_latest_first_with_ties(api, demo):
    agent1 = get_user_model().objects.get(username="agent1")
    times = [BASE + timedelta(minutes=i // 4) for i in range(23)]
    mine = _conversations(demo["sales_line"], times, phone_prefix="+54911000", status="attended", agent=agent1)
    _conversations(demo["sales_line"], times[:3], phone_prefix="+54911100", status="closed", agent=agent1)
    agent2 = get_user_model().objects.get(username="agent2")
    _conversations(demo["sales_line"], times[:3], phone_prefix="+54911200", status="attended", agent=agent2)
    expected = [c.pk for c in sorted(mine, key=lambda c: (c.last_message_at, c.pk), reverse=True)]
    assert _flat(_walk(api("agent1"), "/api/v1/inbox/personal/", limit=5)) == expected
    # Default page: all 23 (under 100), no next.
    body = api("agent1").get("/api/v1/inbox/personal/").json()
    assert [c["id"] for c in body["results"]] == expected and body["next"] is None


def _thread(conversation: Conversation, line: Line, count: int) -> list[Message]:
    """`count` messages; inbound ones carry the provider's time (the thread's order), in ties of
    three; outbound ones (no provider time) sort by their stored time."""
    messages = Message.objects.bulk_create([
        Message(conversation=conversation, line=line, direction="in" if i % 5 else "out", body=f"m{i}",
                status="received" if i % 5 else "sent",
                provider_timestamp=BASE + timedelta(seconds=i // 3) if i % 5 else None)
        for i in range(count)
    ])
    for i, message in enumerate(messages):
        if message.provider_timestamp is None:
            Message.objects.filter(pk=message.pk).update(created_at=BASE + timedelta(seconds=i // 3))
    return sorted(Message.objects.filter(conversation=conversation),
                  key=lambda m: (m.provider_timestamp or m.created_at, m.pk))


def _prev_link(response: Any) -> str | None:
    link = response.headers.get("Link")
    if not link:
        return None
    url, rel = link.split(";", 1)
    assert rel.strip() == 'rel="prev"'
    return url.strip()[1:-1]


def test_thread_newest_page_then_earlier_pages_without_gaps_or_duplicates(api, demo):
    [conversation] = _conversations(demo["sales_line"], [BASE], phone_prefix="+54911000")
    ordered = [m.pk for m in _thread(conversation, demo["sales_line"], 137)]
    client = api("agent1")
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    response = client.get(url)
    newest = [m["id"] for m in response.json()]
    assert newest == ordered[-50:]  # the newest 50, oldest first
    pages = [newest]
    # A message arrives while the agent reads: earlier pages are not shifted by it.
    Message.objects.create(conversation=conversation, line=demo["sales_line"], direction="in", body="late",
                           status="received", provider_timestamp=timezone.now())
    link = _prev_link(response)
    while link:
        assert parse_qs(urlsplit(link).query)["before"]
        response = client.get(link)
        assert response.status_code == 200
        pages.insert(0, [m["id"] for m in response.json()])
        link = _prev_link(response)
    assert [len(p) for p in pages] == [37, 50, 50]
    assert _flat(pages) == ordered

    late = Message.objects.get(conversation=conversation, body="late")
    small = client.get(f"{url}?limit=20")
    assert [m["id"] for m in small.json()] == [*ordered[-19:], late.pk]
    assert _prev_link(small) is not None


def _waiting(demo: dict[str, Any], text: str = "Hola") -> Conversation:
    """A new conversation with one customer message (stored directly: the webhook path has its own tests)."""
    [conversation] = _conversations(demo["sales_line"], [timezone.now()], phone_prefix="+54911555")
    Message.objects.create(conversation=conversation, line=demo["sales_line"], direction="in", body=text,
                           status="received", provider_timestamp=timezone.now())
    return conversation


def test_short_thread_has_no_earlier_link(api, demo):
    conversation = _waiting(demo)
    response = api("agent1").get(f"/api/v1/conversations/{conversation.pk}/messages/")
    assert [m["body"] for m in response.json()] == ["Hola"]
    assert "Link" not in response.headers


@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/v1/inbox/general/", "cursor=not-a-cursor", "cursor"),
    ("/api/v1/inbox/general/", "cursor=" + Cursor(at=None, id=0).encode(), "cursor"),
    ("/api/v1/inbox/personal/", "cursor=WyJ5ZXN0ZXJkYXkiLDFd", "cursor"),  # ["yesterday",1]
    ("/api/v1/inbox/personal/", "cursor=WyIyMDMwLTAxLTAxVDAwOjAwOjAwIiwxXQ", "cursor"),  # naive time
    ("/api/v1/inbox/general/", "limit=0", "limit"),
    ("/api/v1/inbox/general/", "limit=201", "limit"),
    ("/api/v1/inbox/general/", "limit=abc", "limit"),
    ("/api/v1/inbox/general/", "page=2", "page"),
    ("THREAD", "before=%00%ff", "before"),
    ("THREAD", "before=e30", "before"),  # {}
    ("THREAD", "limit=-1", "limit"),
])
def test_bad_cursor_or_limit_is_a_400_naming_the_field(api, demo, path, query, field):
    conversation = _waiting(demo)
    if path == "THREAD":
        path = f"/api/v1/conversations/{conversation.pk}/messages/"
    response = api("agent1").get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == field and body["message"] == body["detail"]


def test_page_one_is_still_accepted(api, demo):
    conversation = _waiting(demo)
    body = api("agent1").get("/api/v1/inbox/general/?page=1").json()
    assert [c["id"] for c in body["results"]] == [conversation.pk]


def test_pages_never_show_other_agents_or_campaigns_conversations(api, demo):
    agent2 = get_user_model().objects.get(username="agent2")
    theirs = _conversations(demo["sales_line"], [BASE] * 3, phone_prefix="+54911000", status="attended",
                            agent=agent2)
    support = _conversations(demo["support_line"], [BASE] * 3, phone_prefix="+54911100")
    mine = _waiting(demo)
    client = api("agent1")
    assert _flat(_walk(client, "/api/v1/inbox/general/", limit=1)) == [mine.pk]
    assert _flat(_walk(client, "/api/v1/inbox/personal/", limit=1)) == []
    before = Cursor(at=timezone.now(), id=10**9).encode()
    for conversation in (theirs[0], support[0]):
        for query in ("", f"?before={before}"):
            assert client.get(f"/api/v1/conversations/{conversation.pk}/messages/{query}").status_code == 404
            assert client.get(f"/console/c/{conversation.pk}/messages/{query}",
                              HTTP_HX_REQUEST="true").status_code in (302, 404)


def _attr(html: str, name: str) -> str:
    return html.split(f'{name}="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_console_thread_pages_and_refresh_from_the_oldest_shown(demo):
    [conversation] = _conversations(demo["sales_line"], [BASE], phone_prefix="+54911000")
    ordered = _thread(conversation, demo["sales_line"], 120)
    console = Client()
    console.force_login(get_user_model().objects.get(username="agent1"))
    url = f"/console/c/{conversation.pk}/messages/"

    def shown(html: str) -> list[int]:
        return [m.pk for m in ordered if f'id="msg-{m.pk}"' in html]

    newest = console.get(url).content.decode()
    assert shown(newest) == [m.pk for m in ordered[-50:]]
    assert newest.count('data-testid="message"') == 50
    earlier = console.get(_attr(newest, "data-load-earlier")).content.decode()
    assert shown(earlier) == [m.pk for m in ordered[-100:-50]]
    # The refresh after a new message: from the oldest shown (page two's first) to the newest.
    refreshed = console.get(f"{url}?from={_attr(earlier, 'data-thread-start')}").content.decode()
    assert shown(refreshed) == [m.pk for m in ordered[-100:]]
    assert 'data-testid="load-earlier"' in refreshed
    last = console.get(_attr(earlier, "data-load-earlier")).content.decode()
    assert shown(last) == [m.pk for m in ordered[:20]] and 'data-testid="load-earlier"' not in last
    everything = console.get(f"{url}?from={_attr(last, 'data-thread-start')}").content.decode()
    assert shown(everything) == [m.pk for m in ordered] and 'data-testid="load-earlier"' not in everything
    bad = console.get(f"{url}?from=nope")
    assert bad.status_code == 400 and '"field": "from"' in bad["HX-Trigger"]
