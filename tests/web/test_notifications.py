"""Notifications in a real browser (issue 11): a new conversation in New, a transfer to me, a
customer's reply in one of mine while I look at another — a toast, a sound (mutable, remembered),
the unread count in the tab's title, and a browser notification while the tab is hidden
(permission asked once)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import BrowserContext, Page, expect
from tests.web.test_console import customer_writes, new_row

pytestmark = pytest.mark.browser

# Stands in for the browser's Notification API and page visibility, which headless Chromium cannot
# show: it records what would have been shown and how often permission was asked.
FAKE_NOTIFICATIONS = """
window.__shown = []; window.__asked = 0; window.__hidden = false; window.__permission = 'default';
window.Notification = class {
  constructor(title, options) { window.__shown.push(options.body); }
  static get permission() { return window.__permission; }
  static requestPermission() {
    window.__asked += 1; window.__permission = 'granted'; return Promise.resolve('granted');
  }
  close() {}
};
Object.defineProperty(document, 'hidden', { get: () => window.__hidden });
"""


def capture(page: Page, name: str) -> None:
    new_row(page, name).get_by_role("button", name=re.compile("Capture")).click()
    expect(page.locator("[data-testid=conversation]")).to_contain_text(name)
    expect(page.locator("[data-testid=composer-text]")).to_be_visible()


def test_new_transfer_reply_toasts_sound_title_and_hidden_tab_notifications(
    agent_page: Callable[..., Page], new_context: Callable[..., BrowserContext], demo: dict[str, Any],
    server_url: str,
) -> None:
    line = demo["sales_line"].pk
    context = new_context()
    context.add_init_script(FAKE_NOTIFICATIONS)
    laura = agent_page("agent1", context=context)
    martin = agent_page("agent2")

    # Permission is asked once, on her first click, never again.
    laura.locator("#tab-mine").click()
    laura.locator("#tab-new").click()
    laura.wait_for_function("window.__asked === 1")

    # A new conversation in New: a toast and a sound.
    customer_writes(server_url, line, "Hola", phone="+5491155550171", name="Pía Luna")
    expect(laura.locator("[data-testid=notification]", has_text="New conversation: Pía Luna")).to_be_visible()
    expect(laura.locator("body[data-last-sound]")).to_be_attached()

    # A reply in one of hers while she reads another: toast and the unread count in the title.
    customer_writes(server_url, line, "Buenas", phone="+5491155550172", name="Quino Ríos")
    capture(laura, "Pía Luna")
    laura.locator("#tab-new").click()
    capture(laura, "Quino Ríos")
    customer_writes(server_url, line, "¿Siguen ahí?", phone="+5491155550171", name="Pía Luna")
    expect(laura.locator("[data-testid=notification]", has_text="Pía Luna: ¿Siguen ahí?")).to_be_visible()
    expect(laura).to_have_title(re.compile(r"^\(1\) "))

    # Muted: remembered across a reload.
    laura.locator("[data-testid=sound-toggle]").click()
    expect(laura.locator("[data-testid=sound-toggle]")).to_have_attribute("aria-pressed", "false")
    laura.reload()
    expect(laura.locator("body[data-ready]")).to_be_attached()
    expect(laura.locator("[data-testid=sound-toggle]")).to_have_attribute("aria-pressed", "false")
    laura.locator("#tab-new").click()  # a first click again: permission is not asked twice
    assert laura.evaluate("window.__asked") == 0

    # A transfer to her while the tab is hidden: a browser notification (permission already granted).
    laura.evaluate("window.__permission = 'granted'; window.__hidden = true")
    customer_writes(server_url, line, "Hola Martín", phone="+5491155550173", name="Rosa Sanz")
    capture(martin, "Rosa Sanz")
    agent1 = get_user_model().objects.get(username="agent1")
    martin.locator("[data-testid=btn-transfer]").click()
    martin.locator(f"#dialog input[value='{agent1.pk}']").check()
    martin.locator("#dialog [data-testid=transfer-note]").fill("she asked for you")
    martin.locator("#dialog").get_by_role("button", name="Transfer").click()
    expect(laura.locator("[data-testid=notification]",
                         has_text="Martín Pérez transferred Rosa Sanz to you: she asked for you")).to_be_visible()
    laura.wait_for_function("window.__shown.some((b) => b.includes('transferred Rosa Sanz to you'))")
