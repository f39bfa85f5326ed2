"""The supervisor's live dashboard, in a real browser: a customer writes, the waiting count moves
without a reload; an agent captures, it goes back down."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from conversa.inbox.models import Conversation


def test_dashboard_follows_the_general_inbox_live(agent_page: Callable[..., Page], server_url: str,
                                                  demo: dict[str, Any]) -> None:
    sales = demo["sales_line"]
    page = agent_page("supervisor")
    page.goto("/supervisor/")
    waiting = page.get_by_test_id(f"waiting-{sales.campaign_id}")
    expect(waiting).to_have_text("0")

    body = json.dumps({"id": "dash-1", "from": "+5491155558001", "name": "Ana", "text": "Hola"})
    response = httpx.post(f"{server_url}/webhooks/sandbox/{sales.pk}/", content=body,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    expect(waiting).to_have_text("1")  # pushed by the websocket, no reload

    agent = agent_page("agent1")
    row = agent.get_by_test_id("list-new").locator(".row").first
    expect(row).to_contain_text("Ana")
    row.get_by_role("button").first.click()
    expect(waiting).to_have_text("0")
    assert Conversation.objects.get(customer_phone="+5491155558001").agent.username == "agent1"
    assert page.js_errors == []  # type: ignore[attr-defined]
