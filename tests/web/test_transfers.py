"""Transfers that say so, in a real browser (issue 11): to another campaign's general inbox with a
note, shown as a system line to whoever opens the conversation next."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.test_console import customer_writes, new_row

from conversa.inbox.models import Conversation

pytestmark = pytest.mark.browser


def test_transfer_to_another_campaigns_general_inbox_with_a_note(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Mi internet no anda", phone="+5491155550160",
                    name="Olga Paz")
    laura = agent_page("agent1")
    carla = agent_page("agent3")  # works Sales and Support
    new_row(laura, "Olga Paz").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()

    laura.locator("[data-testid=btn-transfer]").click()
    dialog = laura.locator("#dialog")
    dialog.locator("[data-testid=transfer-campaign]", has_text="Support").click()
    dialog.locator("[data-testid=transfer-note]").fill("Technical problem, not a sale")
    dialog.get_by_role("button", name="Transfer").click()
    expect(dialog).to_be_hidden()
    expect(laura.locator(".toast", has_text="Sent to the general inbox of Support.")).to_be_visible()
    expect(laura.locator("[data-testid=list-mine] .row", has_text="Olga Paz")).to_have_count(0)

    row = new_row(carla, "Olga Paz")
    expect(row).to_contain_text("Support")
    row.get_by_role("button", name=re.compile("Capture")).click()
    expect(carla.locator("[data-testid=system-line]", has_text=(
        "Laura Gómez sent this conversation to the general inbox of Support: Technical problem, not a sale"))
    ).to_be_visible()
    conversation = Conversation.objects.get(customer_phone="+5491155550160")
    assert conversation.campaign.name == "Support" and conversation.agent.username == "agent3"
