"""A supervisor on an agent's conversation, in a real browser (issue 11 bug 2): read-only with
"Attended by", Join (announced in the thread, then she writes), Reassign with a note; the agent who
had it open is told who moved it, never "Conversation not found."."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.test_console import customer_writes, new_row

from conversa.inbox.models import Conversation

pytestmark = pytest.mark.browser


def test_supervisor_reads_joins_and_reassigns(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola, necesito ayuda", phone="+5491155550150",
                    name="Nora Díaz")
    laura = agent_page("agent1")
    martin = agent_page("agent2")
    new_row(laura, "Nora Díaz").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()
    conversation = Conversation.objects.get(customer_phone="+5491155550150")

    sofia = agent_page("supervisor")
    sofia.goto(f"/c/{conversation.pk}/")
    pane = sofia.locator("[data-testid=conversation]")
    expect(pane.locator("[data-testid=attended-by]")).to_have_text("Attended by Laura Gómez")
    expect(pane.locator("[data-testid=read-only-banner]")).to_be_visible()
    expect(pane.locator("[data-testid=composer-text]")).to_have_count(0)
    expect(pane.locator("[data-testid=btn-close]")).to_have_count(0)
    expect(pane.locator("[data-testid=btn-transfer]")).to_have_text("Reassign")
    sofia.screenshot(path=str(screenshot_dir / "console-supervisor.png"))

    # Join: announced in both threads, then she writes.
    pane.locator("[data-testid=btn-join]").click()
    joined = "Sofía Supervisor joined the conversation as supervisor."
    expect(sofia.locator("[data-testid=system-line]", has_text=joined)).to_be_visible()
    expect(laura.locator("[data-testid=system-line]", has_text=joined)).to_be_visible()
    sofia.locator("[data-testid=composer-text]").fill("Hola Nora, soy la supervisora")
    sofia.locator("[data-testid=composer-text]").press("Enter")
    expect(laura.locator(".msg-out", has_text="soy la supervisora")).to_be_visible()

    # Reassign to Martín with a note: Laura is told, without a red "not found".
    sofia.locator("[data-testid=btn-transfer]").click()
    dialog = sofia.locator("#dialog")
    dialog.locator("label.option", has_text="Martín Pérez").click()
    dialog.locator("[data-testid=transfer-note]").fill("Laura is on a break")
    dialog.get_by_role("button", name="Transfer").click()
    expect(dialog).to_be_hidden()
    expect(laura.locator("[data-testid=pane-notice]")).to_have_text(
        "Sofía Supervisor reassigned this conversation to Martín Pérez.")
    expect(laura.locator("[data-testid=list-mine] .row", has_text="Nora Díaz")).to_have_count(0)
    expect(laura.locator(".toast.error")).to_have_count(0)
    martin.locator("#tab-mine").click()
    martin.locator("[data-testid=list-mine] .row", has_text="Nora Díaz").locator("[data-open-conversation]").click()
    expect(martin.locator("[data-testid=system-line]",
                          has_text="Sofía Supervisor reassigned this conversation to Martín Pérez: Laura is on a break")
           ).to_be_visible()
    martin.screenshot(path=str(screenshot_dir / "console-transfer-line.png"))
    assert Conversation.objects.get(pk=conversation.pk).agent.username == "agent2"
