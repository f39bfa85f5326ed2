"""A long thread in the console (issue 9): the newest 50 messages, "Load earlier messages" from the
keyboard keeps what the agent was reading in place, and live messages still arrive at the bottom."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from conversa.inbox.models import Conversation, Message

pytestmark = pytest.mark.browser


def _long_thread(demo: dict[str, Any], count: int) -> tuple[Conversation, list[Message]]:
    agent = get_user_model().objects.get(username="agent1")
    now = timezone.now()
    conversation = Conversation.objects.create(
        line=demo["sales_line"], campaign=demo["sales_line"].campaign, customer_phone="+5491155550777",
        customer_profile_name="Lucía Larga", agent=agent, status="attended", attended_at=now,
        last_inbound_at=now, last_message_at=now, last_message_preview=f"message {count - 1}")
    start = now - timedelta(hours=2)
    Message.objects.bulk_create([
        Message(conversation=conversation, line=demo["sales_line"], direction="in", body=f"message {i}",
                status="received", provider_timestamp=start + timedelta(seconds=i))
        for i in range(count)
    ])
    return conversation, list(Message.objects.filter(conversation=conversation).order_by("provider_timestamp"))


def _top(page: Page, message: Message, *, deadline: float = 5.0) -> float:
    """Where the message is on screen. A live refresh of the thread (e.g. after it is marked read)
    replaces its nodes; the new ones are waited for, up to the deadline."""
    end = time.monotonic() + deadline
    while True:
        locator = page.locator(f"#msg-{message.pk}")
        locator.wait_for(state="visible", timeout=deadline * 1000)
        box = locator.bounding_box()
        if box is not None:
            return float(box["y"])
        assert time.monotonic() < end, f"message {message.pk} is not on screen"


def _stays_at(page: Page, message: Message, reading: float, *, deadline: float = 5.0) -> None:
    """The message is back where it was read (within 2 px): the console restores the scroll
    position right after it inserts the earlier page, possibly a frame later; polled."""
    end = time.monotonic() + deadline
    while True:
        top = _top(page, message)
        if abs(top - reading) < 2:
            return
        assert time.monotonic() < end, f"message {message.pk} moved from {reading} to {top}"
        page.wait_for_timeout(50)  # polling the page's layout: nothing to wait on but the next frame


def test_load_earlier_messages_by_keyboard_keeps_the_reading_position_and_live_messages_append(
    agent_page: Callable[..., Page], demo: dict[str, Any],
) -> None:
    conversation, messages = _long_thread(demo, 120)
    page = agent_page("agent1")
    page.goto(f"/c/{conversation.pk}/")
    thread = page.locator("#thread")
    shown = thread.locator("[data-testid=message]")
    expect(shown).to_have_count(50)
    expect(shown.first).to_contain_text("message 70")
    expect(shown.last).to_contain_text("message 119")

    button = page.get_by_role("button", name="Load earlier messages")
    button.focus()
    expect(button).to_be_focused()
    reading = _top(page, messages[70])
    page.keyboard.press("Enter")
    expect(shown).to_have_count(100)
    expect(shown.first).to_contain_text("message 20")
    # What she was reading did not move; the focus stays on the (new) button for the next page.
    _stays_at(page, messages[70], reading)
    expect(page.get_by_role("button", name="Load earlier messages")).to_be_focused()
    assert page.evaluate("document.querySelectorAll('[data-load-earlier]').length") == 1

    reading = _top(page, messages[20])
    page.keyboard.press(" ")
    expect(shown).to_have_count(120)
    expect(shown.first).to_contain_text("message 0")
    _stays_at(page, messages[20], reading)
    expect(page.get_by_role("button", name="Load earlier messages")).to_have_count(0)
    expect(thread).to_be_focused()

    # A live message (her reply, announced by the server) arrives at the bottom; the earlier
    # pages stay on screen.
    page.fill("[data-testid=composer-text]", "Ya te respondo")
    page.press("[data-testid=composer-text]", "Enter")
    expect(thread.locator(".msg-out[data-testid=message]", has_text="Ya te respondo")).to_have_count(1)
    expect(shown).to_have_count(121)
    expect(shown.first).to_contain_text("message 0")
    expect(shown.last).to_contain_text("Ya te respondo")
    assert page.js_errors == []  # type: ignore[attr-defined]
