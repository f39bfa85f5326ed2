"""axe-core and reflow on the states private notes, search and history add to the console
(issue 11): the note box with its @mention suggestions, a note in the thread, search results, the
Closed tab, the History side tab and a previous conversation's transcript dialog."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import BrowserContext, expect
from tests.web.test_accessibility import Audit, conversation_of, log_in, open_page
from tests.web.test_console import customer_writes, new_row

from conversa.campaigns.models import DispositionOption
from conversa.inbox.actions import assignment, closing

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("language", "screen"), [("en", "desktop"), ("es", "phone")])
def test_notes_search_and_history_states(language: str, screen: str, new_context: Callable[..., BrowserContext],
                                         demo: dict[str, Any], server_url: str) -> None:
    sales = demo["sales_line"]
    phone_number = "+5491155550231"
    customer_writes(server_url, sales.pk, "Necesito la factura", phone=phone_number, name="Inés Vega")
    # Her first conversation, captured and closed; then the customer writes again.
    first = conversation_of(phone_number)
    agent1 = get_user_model().objects.get(username="agent1")
    assignment.capture(conversation_id=first.pk, agent=agent1)
    closing.close(conversation_id=first.pk, user=agent1,
                  option_id=DispositionOption.objects.get(campaign=first.campaign, name="Sale").pk)
    customer_writes(server_url, sales.pk, "Hola de nuevo", phone=phone_number, name="Inés Vega")

    page = open_page(new_context, server_url, language=language, screen=screen)
    audit = Audit(page, screen=screen)
    log_in(page, "agent1")
    expect(new_row(page, "Inés Vega")).to_be_visible()

    search = page.get_by_test_id("conversation-search")
    search.fill("factura")
    search.press("Enter")
    expect(page.get_by_test_id("search-row")).to_have_count(1)
    audit.check("search results")
    page.locator("[data-clear-search]").click()

    page.get_by_test_id("tab-closed").click()
    expect(page.locator("[data-testid=list-closed] .row", has_text="Inés Vega")).to_be_visible()
    audit.check("the Closed tab")

    page.locator("#tab-new").click()
    new_row(page, "Inés Vega").get_by_role("button", name=re.compile("Capture|Capturar")).click()
    expect(page.get_by_test_id("composer-text")).to_be_visible()
    page.locator("[data-testid=note-box] summary").click()
    note = page.get_by_test_id("note-text")
    note.press_sequentially("@mar")
    expect(page.get_by_test_id("mention-option")).to_be_visible()
    audit.check("a note with @mention suggestions")
    note.press("Enter")
    note.press_sequentially("revisá la factura")
    page.get_by_test_id("note-submit").click()
    expect(page.locator("[data-testid=note]", has_text="revisá la factura")).to_be_visible()
    audit.check("a note in the thread")

    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-item")).to_have_count(1)
    audit.check("the History side tab")
    page.get_by_test_id("history-item").click()
    expect(page.locator("#dialog [data-testid=transcript]")).to_be_visible()
    audit.check("a previous conversation's transcript")
    audit.assert_clean(states=6)
    assert page.js_errors == []  # type: ignore[attr-defined]
