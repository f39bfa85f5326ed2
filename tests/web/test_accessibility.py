"""Accessibility, in a real browser against the real server (issue 16).

axe-core (node_modules, installed by `make test`) runs inside every page and dialog state of the
console, the customer simulator, the supervisor pages and login, in English and Spanish, on a
desktop (1366 x 768) and a phone (375 x 667) screen: no violation of WCAG 2.1 A/AA or of axe's best
practices. On the phone, and again at 320 CSS px (400 % zoom), nothing sticks out of the page
(WCAG 1.4.10 Reflow). A keyboard-only walk goes from login to capture, reply and close, asserting
where the focus is at each step.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, Locator, Page, expect
from tests.conftest import api_token
from tests.servers import REPO
from tests.web.test_console import customer_writes, new_row

from conversa.inbox.models import Conversation, Message

pytestmark = pytest.mark.browser

AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# axe rules accepted as exceptions, each with its reason (the same list is in docs/decisions.md #49).
# Empty: every rule of the tags above holds on every state checked here.
ACCEPTED_RULES: dict[str, str] = {}
SCREENS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 375, "height": 667}}
NARROWEST = {"width": 320, "height": 568}  # 1280 px at 400 % zoom: WCAG 1.4.10's reference width
TABLET = {"width": 768, "height": 1024}  # agents on tablets: the two-column layout at its narrowest
LANGUAGE_SCREENS = pytest.mark.parametrize(
    ("language", "screen"), [("en", "desktop"), ("es", "desktop"), ("en", "phone"), ("es", "phone")])

# Everything that sticks out of the viewport sideways, unless it lives inside a horizontal scroller
# that itself fits (a wide data table) or is parked off-screen on purpose (the skip link).
OVERFLOW_JS = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const out = [];
  if (root.scrollWidth > width) out.push(`page scrolls sideways: ${root.scrollWidth}px`);
  const fits = (el) => { const r = el.getBoundingClientRect(); return r.left >= -1 && r.right <= width + 1; };
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || r.right <= 0 || fits(el)) continue;
    let scroller = el.parentElement;
    while (scroller && !scrolls(scroller)) scroller = scroller.parentElement;
    if (scroller && scroller !== root && scroller !== document.body && fits(scroller)) continue;
    const classes = typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${classes}`;
    out.push(`${name} spans ${Math.round(r.left)}..${Math.round(r.right)}px`);
  }
  return out.slice(0, 8);
}"""

AXE_JS = """async ([tags, skipped]) => {
  const rules = Object.fromEntries(skipped.map((id) => [id, { enabled: false }]));
  const options = { runOnly: { type: 'tag', values: tags }, rules, resultTypes: ['violations'] };
  const result = await axe.run(document, options);
  const where = (n) => `${n.target.join(' ')} ${(n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 160)}`;
  const nodes = (v) => v.nodes.slice(0, 4).map(where).join(' | ');
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${nodes(v)}`);
}"""


class Audit:
    """Collects axe violations and reflow problems state by state; `assert_clean` reports them all."""

    def __init__(self, page: Page, *, screen: str) -> None:
        if not AXE_SCRIPT.exists():
            pytest.fail(f"{AXE_SCRIPT} is missing: run `make test` (it installs axe-core) or `make browser-deps`")
        self.page = page
        self.screen = screen
        self.script = AXE_SCRIPT.read_text()
        self.problems: list[str] = []
        self.checked: list[str] = []

    def check(self, state: str) -> None:
        page = self.page
        if not page.evaluate("typeof window.axe === 'object'"):
            page.add_script_tag(content=self.script)
        for violation in page.evaluate(AXE_JS, [AXE_TAGS, list(ACCEPTED_RULES)]):
            self.problems.append(f"[{state}] {violation}")
        if self.screen == "phone":
            for size in (NARROWEST, TABLET, SCREENS["phone"]):
                page.set_viewport_size(size)
                for overflow in page.evaluate(OVERFLOW_JS):
                    self.problems.append(f"[{state} at {size['width']}px] {overflow}")
        self.checked.append(state)

    def assert_clean(self, *, states: int) -> None:
        assert len(self.checked) >= states, self.checked
        assert not self.problems, "\n".join(self.problems)


def open_page(new_context: Callable[..., BrowserContext], server_url: str, *, language: str, screen: str) -> Page:
    context = new_context()
    context.add_cookies([{"name": "django_language", "value": language, "url": server_url}])
    page = context.new_page()
    page.set_viewport_size(SCREENS[screen])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "demo")
    page.locator("button[type=submit]").click()
    expect(page.locator("body[data-ready]")).to_be_attached()


def sandbox_status(server_url: str, line_id: int, message: Message, status: str) -> None:
    response = httpx.post(f"{server_url}/webhooks/sandbox/{line_id}/", timeout=10,
                          json={"status": {"id": message.provider_message_id, "status": status}})
    assert response.status_code == 200, response.text


def sent_message(phone: str, text: str) -> Message:
    """The agent's message once the provider accepted it (the page shows its ticks first)."""
    return Message.objects.get(conversation__customer_phone=phone, direction="out", body=text,
                               provider_message_id__gt="")


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (opaque ones: alpha is ignored)."""
    def luminance(css: str) -> float:
        channels = [int(x) / 255 for x in re.findall(r"[\d.]+", css)[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def press_until_focused(page: Page, key: str, target: Locator, *, limit: int = 40) -> None:
    """Tab (or Shift+Tab) through the page, as a keyboard user does, until `target` has the focus."""
    handle = target.element_handle()
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
    pytest.fail(f"{limit} presses of {key} never reached {target}")


# --------------------------------------------------------------------------- every state, axe-checked
def test_the_audit_reports_what_it_finds(new_context: Callable[..., BrowserContext]) -> None:
    """The harness itself: a page with known faults is reported, rule by rule (a silent axe would pass anything)."""
    page = new_context().new_page()
    page.set_viewport_size(SCREENS["phone"])
    page.set_content('<html lang="en"><title>t</title><main><h1>t</h1><img src="x.png">'
                     '<div style="width: 600px">wide</div><span aria-label="Read"></span></main></html>')
    audit = Audit(page, screen="phone")
    audit.check("faulty page")
    found = "\n".join(audit.problems)
    assert "image-alt" in found and "aria-prohibited-attr" in found, found
    assert "div spans 8..608px" in found and "page scrolls sideways" in found, found
    with pytest.raises(AssertionError):
        audit.assert_clean(states=1)


@LANGUAGE_SCREENS
def test_console_pages_and_dialogs(language: str, screen: str, new_context: Callable[..., BrowserContext],
                                   demo: dict[str, Any], server_url: str) -> None:
    sales = demo["sales_line"]
    customer_writes(server_url, sales.pk, "Hola, quiero saber precios", phone="+5491155550201", name="Ana Paz")
    customer_writes(server_url, sales.pk, "Buen día", phone="+5491155550202", name="Bruno Díaz")
    page = open_page(new_context, server_url, language=language, screen=screen)
    audit = Audit(page, screen=screen)
    phone = screen == "phone"

    page.goto("/login/")
    audit.check("login")
    page.fill("#id_username", "agent1")
    page.fill("#id_password", "wrong")
    page.locator("button[type=submit]").click()
    expect(page.locator(".form-error")).to_be_visible()
    audit.check("login: wrong password")
    log_in(page, "agent1")
    expect(new_row(page, "Bruno Díaz")).to_be_visible()
    audit.check("console: New tab")

    # A conversation of the general inbox, opened, then captured: the composer gets the focus.
    new_row(page, "Ana Paz").locator(".row-open").click()
    conversation = page.get_by_test_id("conversation")
    expect(conversation).to_have_attribute("data-status", "new")
    expect(page.locator("#announcer")).to_contain_text("Ana Paz")
    if phone:
        expect(page.locator(".inbox")).to_be_hidden()
    audit.check("a conversation of the general inbox")
    conversation.locator(".conv-actions button.primary").click()
    expect(conversation).to_have_attribute("data-status", "attended")
    expect(page.get_by_test_id("composer-text")).to_be_focused()
    audit.check("her conversation")

    # Two replies: one read, one delivered (the ticks differ in shape, and say so in words).
    for text in ("Hola Ana, ¿qué producto te interesa?", "Te paso la lista de precios"):
        page.get_by_test_id("composer-text").fill(text)
        page.keyboard.press("Enter")
        expect(page.locator(".msg-out", has_text=text).locator(".ticks-sent")).to_be_visible()
    sandbox_status(server_url, sales.pk, sent_message("+5491155550201", "Hola Ana, ¿qué producto te interesa?"), "read")
    sandbox_status(server_url, sales.pk, sent_message("+5491155550201", "Te paso la lista de precios"), "delivered")
    read, delivered = page.locator(".msg-out .ticks-read"), page.locator(".msg-out .ticks-delivered")
    expect(read).to_have_count(1)
    expect(delivered).to_have_count(1)
    # Words for assistive technology (the marks are hidden from it); a shape for the eye: read is a badge.
    words = {"en": ("Read", "Delivered"), "es": ("Leído", "Entregado")}[language]
    expect(read.locator(".sr-only")).to_have_text(words[0])
    expect(delivered.locator(".sr-only")).to_have_text(words[1])
    expect(read.locator("[aria-hidden=true]")).to_have_text("✓✓")
    assert read.get_attribute("aria-label") is None and delivered.get_attribute("aria-label") is None
    # Retried assertions: a live refresh of the thread may replace the nodes between two reads.
    expect(delivered).to_have_css("background-color", "rgba(0, 0, 0, 0)")
    expect(read).not_to_have_css("background-color", "rgba(0, 0, 0, 0)")
    audit.check("a thread with delivery ticks")

    for opener, dialog in (("dlg-quick", "#dlg-quick"), ("dlg-template", "#dlg-template")):
        page.locator(f"[data-show-dialog={opener}]").click()
        expect(page.locator(dialog)).to_be_visible()
        if opener == "dlg-template":
            page.locator(f"{dialog} [data-template-select]").select_option(index=1)
            expect(page.locator(f"{dialog} [data-param-fields] input").first).to_be_visible()
        audit.check(f"dialog {opener}")
        page.keyboard.press("Escape")
        expect(page.locator(dialog)).to_be_hidden()

    page.locator("[data-show-identify]").click()
    form = page.get_by_test_id("identify-form")
    expect(form).to_be_visible()
    audit.check("identify the contact")
    form.locator("input[name=first_name]").fill("Ana")
    form.locator("input[name=last_name]").fill("Paz")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("contact-name")).to_have_text("Ana Paz")
    page.locator("details.edit-contact summary").click()
    audit.check("contact, edit form open")
    page.get_by_test_id("tab-records").click()
    expect(page.get_by_test_id("records")).to_be_visible()
    audit.check("records tab")

    if not phone:  # (on a phone the lists are their own screen, checked below)
        page.locator("#tab-mine").click()
        expect(page.locator("[data-testid=list-mine] .row", has_text="Ana Paz")).to_be_visible()
        audit.check("Mine tab")

    page.get_by_test_id("btn-transfer").click()
    dialog = page.locator("#dialog")
    expect(dialog.locator("input[name=agent]").first).to_be_visible()
    audit.check("transfer dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_test_id("btn-close").click()
    dialog.locator("input[data-kind=management]").check()
    expect(dialog.locator("input[name$='__amount']")).to_be_visible()
    audit.check("close dialog, a disposition with a form")
    dialog.locator("input[name$='__amount']").fill("1500")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("closed-banner")).to_be_visible()
    audit.check("a closed conversation")

    # Bruno's conversation, captured, with the 24-hour window closed: only templates.
    if phone:  # the lists are a screen of their own, reached with the back control
        page.locator("[data-back-to-list]").click()
        expect(page.locator(".inbox")).to_be_visible()
        audit.check("phone: back to the lists")
    page.locator("#tab-new").click()
    new_row(page, "Bruno Díaz").locator("button.capture").click()
    expect(page.get_by_test_id("composer-text")).to_be_focused()
    bruno = Conversation.objects.get(customer_phone="+5491155550202")
    Conversation.objects.filter(pk=bruno.pk).update(last_inbound_at=timezone.now() - datetime.timedelta(hours=25))
    page.goto(f"/c/{bruno.pk}/")
    expect(page.get_by_test_id("template-picker")).to_be_visible()
    audit.check("24-hour window closed: templates only")

    page.locator("#btn-new-conversation").click()
    expect(dialog.locator("input[name=phone]")).to_be_visible()
    dialog.locator("input[name=phone]").fill("+5491155550299")
    expect(dialog.locator("[data-create-fields]")).to_be_visible()
    audit.check("new conversation dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    audit.assert_clean(states=17)
    assert page.js_errors == []  # type: ignore[attr-defined]


def conversation_of(phone: str, *, deadline: float = 15.0) -> Conversation:
    """The customer's conversation, once the worker has taken in her webhook (polled to a deadline)."""
    end = time.monotonic() + deadline
    while (conversation := Conversation.objects.filter(customer_phone=phone).first()) is None:
        assert time.monotonic() < end, f"no conversation for {phone} after {deadline} s"
        time.sleep(0.05)
    return conversation


def capture_and_reply(server_url: str, *, username: str, phone: str, text: str) -> Conversation:
    conversation = conversation_of(phone)
    headers = {"Authorization": f"Token {api_token(username)}"}
    base = f"{server_url}/api/v1/conversations/{conversation.pk}"
    assert httpx.post(f"{base}/capture/", headers=headers, timeout=10).status_code == 200
    response = httpx.post(f"{base}/messages/", headers=headers, timeout=10, json={"text": text})
    assert response.status_code in (200, 201, 202), response.text
    return conversation


@LANGUAGE_SCREENS
def test_simulator_supervisor_and_sign_in_pages(language: str, screen: str, new_context: Callable[..., BrowserContext],
                                                demo: dict[str, Any], server_url: str) -> None:
    sales = demo["sales_line"]
    customer_writes(server_url, sales.pk, "Hola", phone="+5491155550211", name="Carla Sosa")
    customer_writes(server_url, demo["support_line"].pk, "No anda", phone="+5491155550212", name="Diego Luna")
    carla = capture_and_reply(server_url, username="agent1", phone="+5491155550211",
                              text="Hola Carla, ¿en qué te ayudo?")
    page = open_page(new_context, server_url, language=language, screen=screen)
    audit = Audit(page, screen=screen)

    page.goto("/sandbox/")
    expect(page.locator("body[data-ready]")).to_be_attached()
    page.get_by_test_id("sim-line").select_option(str(sales.pk))
    page.get_by_test_id("sim-phone").fill("+5491155550211")
    page.get_by_test_id("sim-phone").dispatch_event("change")
    agent_message = page.get_by_test_id("sim-message").filter(has_text="en qué te ayudo")
    expect(agent_message.locator(".ticks-read")).to_be_visible()  # the simulator read it
    audit.check("customer simulator")

    log_in(page, "supervisor")
    page.goto("/supervisor/")
    expect(page.get_by_test_id(f"waiting-{demo['support_line'].campaign_id}")).to_have_text("1")
    audit.check("live dashboard")
    page.goto("/supervisor/reports/")
    expect(page.locator("table.conversations tbody tr")).to_have_count(2)
    audit.check("reports")
    page.goto("/supervisor/reports/?from=2020-99-99")
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check("reports: bad filter")
    for path, state in (("/supervisor/bulk/", "bulk sends"), ("/supervisor/bulk/new/", "new bulk send"),
                        ("/supervisor/contacts/", "contact databases")):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        audit.check(state)
    page.locator("main a[href^='/supervisor/contacts/']").first.click()
    expect(page.locator("table")).to_be_visible()
    audit.check("a contact database")
    page.goto(f"/c/{carla.pk}/")  # a supervisor looking at an agent's conversation
    expect(page.get_by_test_id("conversation")).to_be_visible()
    audit.check("supervisor on a conversation")

    page.context.clear_cookies()
    page.context.add_cookies([{"name": "django_language", "value": language, "url": server_url}])
    log_in(page, "agent1")
    page.goto("/supervisor/")
    expect(page.locator("h1")).to_be_visible()
    audit.check("supervision: not allowed")

    page.context.clear_cookies()
    page.context.add_cookies([{"name": "django_language", "value": language, "url": server_url}])
    page.goto("/login/")
    for _attempt in range(15):
        page.fill("#id_username", "agent3")
        page.fill("#id_password", "wrong")
        page.locator("button[type=submit]").click()
        page.wait_for_load_state()
        if page.get_by_test_id("locked-out").count():
            break
    expect(page.get_by_test_id("locked-out")).to_be_visible()
    audit.check("sign-in locked")

    audit.assert_clean(states=11)
    assert page.js_errors == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- keyboard only
def test_keyboard_only_from_login_to_capture_reply_and_close(
    new_context: Callable[..., BrowserContext], demo: dict[str, Any], server_url: str,
) -> None:
    sales = demo["sales_line"]
    customer_writes(server_url, sales.pk, "Hola", phone="+5491155550221", name="Elena Ruiz")
    customer_writes(server_url, sales.pk, "Hola", phone="+5491155550222", name="Fabián Gil")
    waiting = capture_and_reply(server_url, username="agent1", phone="+5491155550222", text="Ya te atiendo")
    page = open_page(new_context, server_url, language="en", screen="desktop")

    page.goto("/login/")
    expect(page.locator("#id_username")).to_be_focused()  # autofocus
    page.keyboard.type("agent1")
    page.keyboard.press("Tab")
    expect(page.locator("#id_password")).to_be_focused()
    page.keyboard.type("demo")
    page.keyboard.press("Enter")
    expect(page.locator("body[data-ready]")).to_be_attached()

    # The skip link is the first stop; its target shows that it has the focus.
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")  # the first refreshes are done
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#pane")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.getElementById('pane')).outlineStyle") != "none"

    # Back up to the top bar: its focus ring stands out from the dark bar (WCAG 1.4.11, at least 3:1).
    press_until_focused(page, "Shift+Tab", page.get_by_test_id("language"))
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    bar = page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
    assert contrast(ring, bar) >= 3, (ring, bar, contrast(ring, bar))

    # Capture from the list: the composer of the captured conversation gets the focus.
    row = new_row(page, "Elena Ruiz")
    expect(row).to_be_visible()
    press_until_focused(page, "Tab", row.locator("button.capture"))
    page.keyboard.press("Enter")
    composer = page.get_by_test_id("composer-text")
    expect(composer).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("Elena Ruiz")
    page.keyboard.type("Hola Elena, ¿en qué te ayudo?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg-out", has_text="en qué te ayudo")).to_be_visible()
    expect(composer).to_be_focused()
    expect(composer).to_have_value("")

    # The side panel's tabs: one Tab stop, arrow keys move between them.
    contact_tab = page.get_by_role("tab", name="Contact")
    press_until_focused(page, "Tab", contact_tab)
    expect(contact_tab).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")
    records_tab = page.get_by_test_id("tab-records")
    expect(records_tab).to_be_focused()
    expect(records_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#side-panel-records")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#side-panel-records")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(records_tab).to_be_focused()
    page.keyboard.press("Home")
    expect(contact_tab).to_be_focused()
    expect(page.locator("#side-panel-contact")).to_be_visible()

    # Close with a disposition: the dialog takes the focus, then gives it to her next conversation.
    close_button = page.get_by_test_id("btn-close")
    press_until_focused(page, "Shift+Tab", close_button)
    page.keyboard.press("Enter")
    dialog = page.locator("#dialog")
    first_option = dialog.locator("input[name=disposition]").first
    expect(first_option).to_be_focused()
    page.keyboard.press("Space")
    expect(first_option).to_be_checked()
    press_until_focused(page, "Tab", dialog.locator("button[type=submit]"))
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("closed-banner")).to_be_visible()
    next_row = page.locator(f"#row-mine-{waiting.pk} .row-open")
    expect(next_row).to_be_focused()
    # ...which she opens with Enter; a polite live region says it loaded.
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", str(waiting.pk))
    expect(page.locator("#announcer")).to_contain_text("Fabián Gil")
    assert Conversation.objects.get(customer_phone="+5491155550221").status == "closed"
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_switching_language_keeps_the_open_conversation(
    new_context: Callable[..., BrowserContext], demo: dict[str, Any], server_url: str,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550231", name="Gabriela Paz")
    page = open_page(new_context, server_url, language="en", screen="desktop")
    log_in(page, "agent1")
    new_row(page, "Gabriela Paz").locator(".row-open").click()  # opened in place: the URL follows
    conversation = Conversation.objects.get(customer_phone="+5491155550231")
    expect(page).to_have_url(re.compile(rf"/c/{conversation.pk}/$"))
    page.get_by_test_id("language").select_option("es")
    expect(page.locator("#tab-new")).to_contain_text("Nuevos")
    expect(page).to_have_url(re.compile(rf"/c/{conversation.pk}/$"))
    expect(page.get_by_test_id("conversation")).to_have_attribute("data-conversation-id", str(conversation.pk))


def test_phone_screens_stack_the_list_the_thread_and_the_side_panel(
    new_context: Callable[..., BrowserContext], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola, quiero saber precios", phone="+5491155550241",
                    name="Hugo Ramos")
    page = open_page(new_context, server_url, language="en", screen="phone")
    log_in(page, "agent1")
    row = new_row(page, "Hugo Ramos")
    expect(row).to_be_visible()
    expect(page.locator("#pane")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "console-phone-list.png"))
    row.locator("button.capture").click()
    composer = page.get_by_test_id("composer-text")
    expect(composer).to_be_focused()
    expect(page.locator(".inbox")).to_be_hidden()
    page.keyboard.type("Hola Hugo")
    page.keyboard.press("Enter")
    expect(page.locator(".msg-out", has_text="Hola Hugo")).to_be_visible()
    # Thread, composer, then the side panel below them, all as wide as the screen.
    boxes = {name: page.locator(selector).bounding_box() for name, selector in
             (("thread", "#thread"), ("composer", "[data-composer]"), ("side", "#side"))}
    assert all(box is not None for box in boxes.values()), boxes
    assert boxes["thread"]["y"] < boxes["composer"]["y"] < boxes["side"]["y"], boxes  # type: ignore[index]
    for box in boxes.values():
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375 + 1, boxes
    page.screenshot(path=str(screenshot_dir / "console-phone.png"), full_page=True)
    back = page.locator("[data-back-to-list]")
    expect(back).to_be_visible()
    back.click()
    expect(page.locator(".inbox")).to_be_visible()
    expect(page.locator("[data-testid=list-mine] .row", has_text="Hugo Ramos")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/$"))
    # On a desktop the list stays beside the conversation: no back control.
    page.locator("[data-testid=list-mine] .row-open", has_text="Hugo Ramos").click()
    expect(back).to_be_visible()
    page.set_viewport_size(SCREENS["desktop"])
    expect(back).to_be_hidden()
    expect(page.locator(".inbox")).to_be_visible()
