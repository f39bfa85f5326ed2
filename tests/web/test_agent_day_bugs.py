"""Issue 11's console bugs ("the agent's day"), each in a real browser against the real server.

Every test here failed on the console as it was before its fix (see the issue's numbered list)."""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect
from tests.servers import REPO, STOP_GRACE, free_port, local_url, server_env
from tests.web.conftest import STARTUP_DEADLINE
from tests.web.test_console import customer_writes, new_row

from conversa.campaigns.models import TimeGroup
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import MessageTemplate

pytestmark = pytest.mark.browser


class RestartableServer:
    """The console's server (one uvicorn process, embedded worker) on a fixed loopback port, which
    a test can stop and start again: the browser keeps the same origin, session and page."""

    def __init__(self, *, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.port = free_port()
        self.url = local_url(self.port)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log_path = self.logs / f"uvicorn-{self.starts}.log"
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "conversa.asgi:application", "--app-dir", "src",
                 "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"uvicorn exited with {self.proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/login/", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a starting server: nothing to wait on but its port
        pytest.fail(f"uvicorn did not answer within {STARTUP_DEADLINE}s:\n{log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(STOP_GRACE)
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def server(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    env = server_env(CONVERSA_EMBEDDED_WORKER="1", CONVERSA_WORKER_INTERVAL="0.05",
                     MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    running = RestartableServer(env=env, logs=tmp_path_factory.mktemp("server"))
    running.start()
    try:
        yield running
    finally:
        running.stop()  # before the test database is flushed (see conftest's server_url)


@pytest.fixture
def server_url(server: RestartableServer) -> str:
    """This module's tests run on the restartable server (same settings as conftest's)."""
    return server.url


def console_errors(page: Page) -> list[str]:
    """What the page logs as errors from now on, with the URL of the resource it is about."""
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} @ {message.location.get('url', '')}")

    page.on("console", note)
    return errors


def capture(page: Page, name: str) -> None:
    page.click("#tab-new")
    new_row(page, name).get_by_role("button", name=re.compile("Capture")).click()
    expect(page.locator("[data-testid=conversation]")).to_contain_text(name)
    expect(page.locator("[data-testid=conversation]")).to_have_attribute("data-status", "attended")


def mine_row(page: Page, name: str) -> Any:
    return page.locator("[data-testid=list-mine] .row", has_text=name)


def until(page: Page, condition: Callable[[], bool], *, deadline: float = 30.0, what: str = "condition") -> None:
    """Poll a condition no locator expresses, to a deadline. Waiting through the page lets Playwright
    deliver its events (requestfailed, console) meanwhile: a plain sleep would hold them back."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        page.wait_for_timeout(100)
    pytest.fail(f"{what} not met within {deadline}s")


# --------------------------------------------------------------------------- bug 1
def test_a_customer_message_reopens_the_window_live(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str,
) -> None:
    line = demo["sales_line"].pk
    customer_writes(server_url, line, "Hola", phone="+5491155550201", name="Vera")
    laura = agent_page("agent1")
    capture(laura, "Vera")
    conversation = Conversation.objects.get(customer_phone="+5491155550201")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - datetime.timedelta(hours=25))
    laura.reload()
    expect(laura.locator("[data-testid=template-picker]")).to_be_visible()
    expect(laura.locator("[data-testid=window]")).to_contain_text("closed")

    customer_writes(server_url, line, "¿Siguen ahí?", phone="+5491155550201", name="Vera")
    expect(laura.locator(".msg-in", has_text="¿Siguen ahí?")).to_be_visible()
    # Without a reload: the window is open again and the composer replaces the template picker.
    expect(laura.locator("[data-testid=window]")).to_contain_text("left")
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()
    expect(laura.locator("[data-testid=template-picker]")).to_have_count(0)


# --------------------------------------------------------------------------- bug 4
def test_the_console_recovers_after_the_server_is_stopped_and_started(
    agent_page: Callable[..., Page], demo: dict[str, Any], server: RestartableServer, screenshot_dir: Path,
) -> None:
    line = demo["sales_line"].pk
    customer_writes(server.url, line, "Hola", phone="+5491155550202", name="Wanda")
    customer_writes(server.url, line, "Buenas", phone="+5491155550203", name="Ximena")
    laura = agent_page("agent1")
    expect(new_row(laura, "Wanda")).to_be_visible()
    expect(new_row(laura, "Ximena")).to_be_visible()
    expect(laura.locator("#conn")).to_have_attribute("data-state", "live")
    failed: list[str] = []
    laura.on("requestfailed", lambda r: failed.append(r.url))

    server.stop()
    expect(laura.locator("#conn")).not_to_have_attribute("data-state", "live")
    new_row(laura, "Ximena").locator(".row-open").click()
    # The click and two rounds of background polling fail: one persistent banner, no pile of toasts.
    until(laura, lambda: len([u for u in failed if "/console/" in u]) >= 4, deadline=40,
          what="failed console requests")
    banner = laura.locator("[data-testid=connection-problem]")
    expect(banner).to_be_visible()
    expect(laura.locator(".toast")).to_have_count(0)
    laura.screenshot(path=str(screenshot_dir / "connection-problem.png"))

    server.start()
    expect(laura.locator("#conn")).to_have_attribute("data-state", "live", timeout=45_000)
    expect(banner).to_be_hidden()
    # The conversation clicked while the server was down opens once it is back.
    expect(laura.locator("#conv-name")).to_have_text("Ximena")
    new_row(laura, "Wanda").locator(".row-open").click()
    expect(laura.locator("#conv-name")).to_have_text("Wanda")
    assert laura.js_errors == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- bug 5
WATCH_OPEN_ROW = """() => {
  window.__seen = { unread: false, lostSelection: false };
  const check = () => {
    const id = document.body.dataset.openId;
    const row = id && document.getElementById(`row-mine-${id}`);
    if (!row) return;
    if (row.querySelector('.unread-count') || row.classList.contains('has-unread')) window.__seen.unread = true;
    if (!row.classList.contains('selected')) window.__seen.lostSelection = true;
  };
  new MutationObserver(check).observe(document.getElementById('lists'),
    { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
}"""


def test_the_open_conversation_never_shows_unread_and_keeps_its_highlight(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str,
) -> None:
    line = demo["sales_line"].pk
    customer_writes(server_url, line, "Hola", phone="+5491155550204", name="Yanina")
    laura = agent_page("agent1")
    capture(laura, "Yanina")
    row = mine_row(laura, "Yanina")
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    laura.evaluate(WATCH_OPEN_ROW)

    for text in ["Primera pregunta", "Segunda pregunta"]:
        customer_writes(server_url, line, text, phone="+5491155550204", name="Yanina")
        expect(laura.locator(".msg-in", has_text=text)).to_be_visible()
        expect(row.locator(".row-preview")).to_have_text(text)  # the lists were refreshed
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(row.locator(".row-open")).to_have_attribute("aria-current", "true")
    seen = laura.evaluate("window.__seen")
    assert seen == {"unread": False, "lostSelection": False}, seen


# --------------------------------------------------------------------------- bug 6
def test_errors_speak_the_agents_language_and_go_away(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550205", name="Zoe")
    laura = agent_page("agent1")
    capture(laura, "Zoe")
    laura.locator("[data-testid=btn-close]").click()
    dialog = laura.locator("#dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label(re.compile("Interested, call back")).check()
    picker = dialog.locator("input[data-follow-up]")
    expect(picker).to_be_enabled()
    # The picker refuses past dates.
    minimum = picker.get_attribute("min")
    assert minimum, "the follow-up picker has no minimum"
    assert minimum >= (datetime.datetime.now() - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")

    # A date that went past while the dialog was open: the server's answer names no field.
    picker.evaluate("el => el.removeAttribute('min')")
    picker.fill("2020-01-01T10:00")
    dialog.get_by_role("button", name="Close conversation").click()
    error = dialog.locator(".form-error")
    expect(error).to_contain_text("in the future")
    expect(error).not_to_contain_text("follow_up_at")
    expect(laura.locator(".toast.error")).to_have_count(1)
    expect(laura.locator(".toast.error")).not_to_contain_text("follow_up_at")

    # Fixing the date clears the error; a successful close leaves no stale error toast.
    future = (datetime.datetime.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    picker.fill(future)
    expect(error).to_have_text("")
    dialog.get_by_role("button", name="Close conversation").click()
    expect(dialog).to_be_hidden()
    expect(laura.locator("[data-testid=closed-banner]")).to_be_visible()
    expect(laura.locator(".toast.error")).to_have_count(0)


# --------------------------------------------------------------------------- bug 7
def test_new_conversation_dialog_checks_the_number_as_the_send_will(
    agent_page: Callable[..., Page], demo: dict[str, Any],
) -> None:
    laura = agent_page("agent1")
    laura.get_by_role("button", name="New conversation").click()
    dialog = laura.locator("#dialog")
    expect(dialog).to_be_visible()
    phone = dialog.locator("input[name=phone]")
    lookup = dialog.locator("[data-contact-lookup]")
    create = dialog.locator("fieldset.create-contact")

    # A number the send would reject is reported as such, not as "will be created".
    phone.fill("12345678")
    expect(lookup).to_contain_text("not a valid phone number")
    expect(lookup).not_to_contain_text("will be created")

    # Sending anyway: the error; changing the number clears it.
    dialog.locator("select[name=template]").select_option(label="follow_up (en)")
    dialog.locator("[data-param-fields] input").fill("Ana")
    dialog.get_by_role("button", name="Send template").click()
    error = dialog.locator(".form-error")
    expect(error).to_contain_text("not a valid phone number")
    phone.fill("+5491155550009")
    expect(error).to_have_text("")

    # An existing contact: named, and "Create the contact" is not offered.
    expect(lookup).to_contain_text("Julieta Fernández")
    expect(create).to_be_hidden()

    # A new valid number: it will be created.
    phone.fill("+5491155550206")
    expect(lookup).to_contain_text("will be created")
    expect(create).to_be_visible()
    expect(dialog.locator("[data-create-contact]")).to_be_checked()


# --------------------------------------------------------------------------- bug 8
def test_a_fresh_outbound_conversation_waits_for_the_customer(
    agent_page: Callable[..., Page], demo: dict[str, Any], screenshot_dir: Path,
) -> None:
    laura = agent_page("agent1")
    laura.get_by_role("button", name="New conversation").click()
    dialog = laura.locator("#dialog")
    dialog.locator("input[name=phone]").fill("+5491155550207")
    expect(dialog.locator("[data-contact-lookup]")).to_contain_text("will be created")
    dialog.locator("select[name=template]").select_option(label="follow_up (en)")
    dialog.locator("[data-param-fields] input").fill("Ana")
    dialog.locator("input[name=first_name]").fill("Ana")
    dialog.get_by_role("button", name="Send template").click()
    expect(dialog).to_be_hidden()
    picker = laura.locator("[data-testid=template-picker]")
    expect(picker).to_contain_text("Waiting for the customer's reply — only templates until then")
    expect(picker).not_to_contain_text("24 hours")
    expect(laura.locator("[data-testid=window]")).to_contain_text("Waiting for the customer")
    laura.screenshot(path=str(screenshot_dir / "outbound-waiting.png"))


# --------------------------------------------------------------------------- bug 9
def test_the_simulator_says_why_a_signed_line_refuses_it(
    new_context: Callable[..., BrowserContext], demo: dict[str, Any],
) -> None:
    provider = demo["sales_line"].provider
    provider.webhook_secret = "s3cret"
    provider.save(update_fields=["webhook_secret"])
    sim = new_context().new_page()
    sim.goto("/sandbox/")
    expect(sim.locator("body[data-ready]")).to_be_attached()
    sim.select_option("[data-testid=sim-line]", str(demo["sales_line"].pk))
    sim.fill("[data-testid=sim-text]", "Hola")
    sim.press("[data-testid=sim-text]", "Enter")
    problem = sim.locator("[data-testid=sim-error]")
    expect(problem).to_contain_text("webhook secret")
    # It stays while the line is refused (the thread's refresh does not wipe it).
    sim.fill("[data-testid=sim-phone]", "+5491155550208")
    sim.dispatch_event("[data-testid=sim-phone]", "change")
    expect(sim.locator("#sim-sub")).to_contain_text("+5491155550208")
    expect(problem).to_contain_text("webhook secret")


# --------------------------------------------------------------------------- bug 11
def test_records_show_the_forms_labels_and_formats(
    agent_page: Callable[..., Page], demo: dict[str, Any],
) -> None:
    laura = agent_page("agent1")
    laura.get_by_role("button", name="New conversation").click()
    dialog = laura.locator("#dialog")
    dialog.locator("input[name=phone]").fill("+5491155550009")  # Julieta, an existing contact
    expect(dialog.locator("[data-contact-lookup]")).to_contain_text("Julieta")
    dialog.locator("select[name=template]").select_option(label="follow_up (en)")
    dialog.locator("[data-param-fields] input").fill("Julieta")
    dialog.get_by_role("button", name="Send template").click()
    expect(dialog).to_be_hidden()
    laura.locator("[data-testid=btn-close]").click()
    expect(dialog).to_be_visible()
    dialog.get_by_label(re.compile("Quote sent")).check()
    dialog.locator("input[name$='__amount']").fill("240")
    dialog.get_by_role("button", name="Close conversation").click()
    expect(dialog).to_be_hidden()
    laura.locator("[data-testid=tab-records]").click()
    record = laura.locator("[data-testid=records] .record").first
    expect(record.locator("dt")).to_have_text(["Amount"])
    expect(record.locator("dd")).to_have_text(["240"])


# --------------------------------------------------------------------------- bug 12
def test_an_out_of_hours_answer_keeps_the_customers_text_as_preview(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str,
) -> None:
    line = demo["sales_line"]
    line.time_group = TimeGroup.objects.create(name="Never open", timezone="UTC")  # no ranges: closed
    line.out_of_hours_message = "We are closed now, we will answer tomorrow."
    line.save(update_fields=["time_group", "out_of_hours_message"])
    laura = agent_page("agent1")
    customer_writes(server_url, line.pk, "Necesito un presupuesto", phone="+5491155550209", name="Abril")
    row = new_row(laura, "Abril")
    expect(row).to_be_visible()
    until(laura, lambda: Conversation.objects.get(customer_phone="+5491155550209").messages.count() == 2,
          what="the out-of-hours answer")
    laura.reload()
    expect(row.locator(".row-preview")).to_have_text("Necesito un presupuesto")


# --------------------------------------------------------------------------- bug 13
def test_no_console_errors_for_expected_refusals_and_a_favicon(
    agent_page: Callable[..., Page], new_context: Callable[..., BrowserContext], demo: dict[str, Any],
    server_url: str,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550210", name="Brenda")
    laura = agent_page("agent1")
    stale = new_context()
    stale.route_web_socket(re.compile(r".*/ws/agent/.*"), lambda ws: None)
    martin = agent_page("agent2", context=stale)
    errors = console_errors(martin)
    icon = martin.locator("head link[rel=icon]")
    expect(icon).to_have_count(1)
    assert httpx.get(f"{server_url}{icon.get_attribute('href')}", timeout=10).status_code == 200
    assert httpx.get(f"{server_url}/favicon.ico", timeout=10, follow_redirects=True).status_code == 200

    capture(laura, "Brenda")
    # Martín's list is stale: his capture is refused (409), shown to him, and not logged as an error.
    new_row(martin, "Brenda").get_by_role("button", name=re.compile("Capture")).click()
    expect(martin.locator(".toast.error")).to_contain_text("Already taken by Laura Gómez")
    # A conversation that is not his (404): the pane empties, no error logged either.
    martin.goto(f"/c/{Conversation.objects.get(customer_phone='+5491155550210').pk}/")
    expect(martin.locator("body[data-ready]")).to_be_attached()
    expect(martin.locator("#pane .empty-pane")).to_be_visible()
    # The browser's own network lines for the refused requests are not the page's errors; a missing
    # favicon is.
    logged = [e for e in errors if not e.startswith("Failed to load resource") or "favicon" in e]
    assert logged == [], logged
    assert martin.js_errors == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- composer (issue 11 feature)
def test_composer_quick_replies_slash_search_and_drafts_that_survive_a_reload(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    line = demo["sales_line"].pk
    customer_writes(server_url, line, "Hola", phone="+5491155550211", name="Celia Ramos")
    customer_writes(server_url, line, "Buenas", phone="+5491155550212", name="Dora")
    laura = agent_page("agent1")
    capture(laura, "Dora")
    capture(laura, "Celia Ramos")
    composer = laura.locator("[data-testid=composer-text]")

    # A quick reply from the dialog goes into the composer, filled in; she edits it; Enter sends.
    laura.get_by_role("button", name="Quick replies").click()
    laura.locator("#dlg-quick").get_by_role("button", name=re.compile("Greeting")).click()
    expect(composer).to_have_value("Hi Celia! I'm Laura from Sales. How can I help?")
    expect(composer).to_be_focused()
    composer.press("End")
    composer.type(" Saludos.")
    composer.press("Enter")
    expect(laura.locator(".msg-out", has_text="How can I help? Saludos.")).to_be_visible()
    expect(composer).to_have_value("")

    # "/" searches the quick replies by title; Enter puts the chosen one in the composer (not sent).
    composer.type("/pri")
    suggest = laura.locator("[data-testid=qr-suggest]")
    expect(suggest.get_by_role("option")).to_have_count(1)
    expect(suggest.get_by_role("option")).to_contain_text("Price list")
    laura.screenshot(path=str(screenshot_dir / "composer-quick-reply-search.png"))
    composer.press("Enter")
    expect(composer).to_have_value("Hi Celia, here is our price list: https://example.com/prices")
    expect(suggest).to_be_hidden()
    expect(laura.locator(".msg-out", has_text="price list")).to_have_count(0)

    # The draft survives a reload and a visit to another conversation; sending clears it.
    composer.fill("Borrador para Celia")
    laura.reload()
    expect(laura.locator("body[data-ready]")).to_be_attached()
    expect(laura.locator("[data-testid=composer-text]")).to_have_value("Borrador para Celia")
    mine_row(laura, "Dora").locator(".row-open").click()
    expect(laura.locator("#conv-name")).to_have_text("Dora")
    expect(laura.locator("[data-testid=composer-text]")).to_have_value("")
    mine_row(laura, "Celia Ramos").locator(".row-open").click()
    expect(laura.locator("#conv-name")).to_have_text("Celia Ramos")
    composer = laura.locator("[data-testid=composer-text]")
    expect(composer).to_have_value("Borrador para Celia")
    composer.press("Enter")
    expect(laura.locator(".msg-out", has_text="Borrador para Celia")).to_be_visible()
    laura.reload()
    expect(laura.locator("body[data-ready]")).to_be_attached()
    expect(laura.locator("[data-testid=composer-text]")).to_have_value("")
    assert laura.js_errors == []  # type: ignore[attr-defined]


def test_template_parameters_are_labelled_and_prefilled_from_the_contact(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    template = MessageTemplate.objects.get(line=demo["sales_line"], name="order_update")
    template.param_fields = [{"label": "First name", "field": "first_name"}, {"label": "Order number"}]
    template.save(update_fields=["param_fields"])
    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550009", name="Juli")  # Julieta
    laura = agent_page("agent1")
    capture(laura, "Julieta")
    conversation = Conversation.objects.get(customer_phone="+5491155550009")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - datetime.timedelta(hours=25))
    laura.reload()
    picker = laura.locator("[data-testid=template-picker]")
    picker.locator("[data-testid=template-select]").select_option(label="order_update (en)")
    params = picker.locator("[data-param-fields] label")
    expect(params).to_have_count(2)
    expect(params.nth(0)).to_contain_text("First name")
    expect(params.nth(0).locator("input")).to_have_value("Julieta")
    expect(params.nth(1)).to_contain_text("Order number")
    expect(params.nth(1).locator("input")).to_have_value("")
    params.nth(1).locator("input").fill("A-7")
    expect(picker.locator("[data-testid=template-preview]")).to_have_text("Hi Julieta, your order A-7 is on its way.")
    laura.screenshot(path=str(screenshot_dir / "template-parameters.png"))
    picker.get_by_role("button", name="Send template").click()
    expect(laura.locator(".msg-out", has_text="Hi Julieta, your order A-7 is on its way.")).to_be_visible()
