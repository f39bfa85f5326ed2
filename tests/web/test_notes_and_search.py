"""Private notes, search and history in a real browser (issue 11): a note with an @mention picked
from the suggestions shows in the thread, never reaches the provider or the customer's simulator,
and the mentioned colleague's console says so; search by name, phone and text finds closed
conversations too; the Closed tab; the customer's previous conversation opens read only."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect
from tests.inbox.relay import Relay
from tests.web.test_console import customer_writes, new_row, relay  # noqa: F401 - the relay fixture

from conversa.campaigns.models import DispositionOption
from conversa.inbox.actions import closing
from conversa.inbox.models import Conversation, Message, Note

pytestmark = pytest.mark.browser


def live(page: Page) -> None:
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def test_a_note_with_a_mention_is_shown_and_never_sent(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, relay: Relay,  # noqa: F811
    screenshot_dir: Path,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Quiero el plan anual", phone="+5491155550180",
                    name="Nora Paz")
    laura, martin = agent_page("agent1"), agent_page("agent2")
    live(martin)
    new_row(laura, "Nora Paz").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()

    laura.locator("[data-testid=note-box] summary").click()
    note = laura.locator("[data-testid=note-text]")
    note.press_sequentially("@mar")
    option = laura.locator("[data-testid=mention-option]", has_text="Martín Pérez")
    expect(option).to_be_visible()
    expect(option).to_have_attribute("aria-selected", "true")
    note.press("Enter")
    expect(note).to_have_value("@agent2 ")
    note.press_sequentially("VIP: ofrecele el 10 % de descuento")
    laura.locator("[data-testid=note-submit]").click()

    shown = laura.locator("[data-testid=note]", has_text="@agent2 VIP: ofrecele el 10 % de descuento")
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("Private note")
    expect(note).to_have_value("")
    toast = martin.locator("[data-testid=mention-notification]")
    expect(toast).to_contain_text("Laura Gómez mentioned you in a note on Nora Paz: @agent2 VIP")
    laura.locator("[data-testid=conversation]").screenshot(path=str(screenshot_dir / "console-private-note.png"))

    supervisor = agent_page("supervisor")
    conversation = Conversation.objects.get(customer_phone="+5491155550180")
    supervisor.goto(f"/c/{conversation.pk}/")
    expect(supervisor.locator("[data-testid=note]", has_text="ofrecele el 10 %")).to_be_visible()

    # Never sent: no outbound message, nothing at the provider, nothing on the customer's phone.
    note_row = Note.objects.get()
    assert list(note_row.mentions.values_list("username", flat=True)) == ["agent2"]
    assert not Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND).exists()
    assert relay.received == []
    simulator = httpx.get(f"{server_url}/sandbox/{demo['sales_line'].pk}/messages/",
                          params={"phone": "+5491155550180"}, timeout=10)
    assert simulator.status_code == 200 and "descuento" not in simulator.text
    assert laura.js_errors == [] and martin.js_errors == []  # type: ignore[attr-defined]


def test_search_the_closed_tab_and_a_previous_conversations_transcript(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Necesito la factura del pedido 4411",
                    phone="+5491155550181", name="Bruno Díaz")
    laura = agent_page("agent1")
    new_row(laura, "Bruno Díaz").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()
    first = Conversation.objects.get(customer_phone="+5491155550181")
    closing.close(conversation_id=first.pk, user=get_user_model().objects.get(username="agent1"),
                  option_id=DispositionOption.objects.get(campaign=first.campaign, name="Sale").pk)
    laura.goto("/")
    expect(laura.locator("body[data-ready]")).to_be_attached()

    search = laura.locator("[data-testid=conversation-search]")
    for query in ("factura", "Bruno", "5550181"):  # text, name, phone
        search.fill(query)
        search.press("Enter")
        found = laura.locator("[data-testid=search-row]")
        expect(found).to_have_count(1)
        expect(found).to_contain_text("Bruno Díaz")
        expect(found).to_contain_text("Closed")
    search.fill("nadie dijo esto")
    search.press("Enter")
    expect(laura.locator("[data-testid=search-results]")).to_contain_text("No conversations match.")
    search.fill("factura")
    search.press("Enter")
    expect(laura.locator("[data-testid=search-row]")).to_have_count(1)
    laura.locator("[data-testid=search-results]").screenshot(path=str(screenshot_dir / "console-search.png"))
    laura.locator("[data-testid=search-row] .row-open").click()
    expect(laura.locator("[data-testid=closed-banner]")).to_be_visible()
    laura.get_by_role("button", name="Clear search").click()
    expect(laura.locator("[data-testid=search-row]")).to_have_count(0)

    laura.locator("[data-testid=tab-closed]").click()
    closed = laura.locator("[data-testid=list-closed] .row", has_text="Bruno Díaz")
    expect(closed).to_be_visible()
    expect(laura.locator("[data-testid=list-mine]")).to_be_hidden()

    # He writes again: a new conversation, whose side panel lists the closed one.
    customer_writes(server_url, demo["sales_line"].pk, "Hola otra vez", phone="+5491155550181", name="Bruno Díaz")
    laura.locator("#tab-new").click()
    new_row(laura, "Hola otra vez").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()
    laura.locator("[data-testid=tab-history]").click()
    item = laura.locator("[data-testid=history-item]")
    expect(item).to_have_count(1)
    item.click()
    transcript = laura.locator("#dialog [data-testid=transcript]")
    expect(transcript).to_be_visible()
    expect(transcript).to_contain_text("Necesito la factura del pedido 4411")
    expect(transcript).to_contain_text("Read only")
    expect(transcript.locator("textarea, [data-testid=composer-text]")).to_have_count(0)
    laura.locator("#dialog").screenshot(path=str(screenshot_dir / "console-transcript.png"))
    transcript.get_by_role("button", name="Close").click()
    expect(laura.locator("#dialog")).to_be_hidden()
    assert laura.js_errors == []  # type: ignore[attr-defined]
