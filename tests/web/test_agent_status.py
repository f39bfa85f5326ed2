"""Agent status in a real browser (issue 11 bug 3 and the status feature): the header's Ready /
Paused (with a reason) / Offline control, live in her other tabs; offline when her last console has
been closed for the grace period and on logout; the transfer dialog offers only agents who can take
the conversation now (never one who never logged in, logged out, or lacks the WhatsApp skill)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from tests.servers import running_server, server_env
from tests.web.conftest import STARTUP_DEADLINE
from tests.web.test_console import customer_writes, new_row

from conversa.accounts.models import AgentProfile, PauseReason, StatusPeriod

pytestmark = pytest.mark.browser


@pytest.fixture
def server_url(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """As tests/web/conftest.py's, with a short presence grace and a frequent sweep; agents start
    as the demo leaves them (offline until they open the console)."""
    AgentProfile.objects.update(status=AgentProfile.Status.OFFLINE)
    env = server_env(CONVERSA_EMBEDDED_WORKER="1", CONVERSA_WORKER_INTERVAL="0.05", CONVERSA_PRESENCE_GRACE="1",
                     CONVERSA_SWEEP_EVERY="0.3", MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    with running_server(env=env, logs=tmp_path_factory.mktemp("server"), ready_path="/login/",
                        deadline=STARTUP_DEADLINE) as url:
        yield url


def status_of(username: str) -> str:
    return AgentProfile.objects.get(user__username=username).status


def expect_status(username: str, status: str, page: Page, *, deadline: float = 15.0) -> None:
    """The database's status, polled to a deadline (the page keeps running its own work meanwhile)."""
    give_up = time.monotonic() + deadline
    while status_of(username) != status and time.monotonic() < give_up:
        page.wait_for_timeout(100)
    assert status_of(username) == status


def test_status_control_pauses_with_a_reason_and_goes_offline_when_closed(
    agent_page: Callable[..., Page], new_context: Callable[..., BrowserContext], screenshot_dir: Path,
) -> None:
    context = new_context()
    laura = agent_page("agent1", context=context)
    # Opening the console made her ready (she had not chosen Offline).
    control = laura.locator("[data-testid=agent-status]")
    expect(control).to_have_attribute("data-status", "ready")
    expect(laura.locator("[data-testid=status-select]")).to_have_value("ready")
    expect_status("agent1", "ready", laura)

    other_tab = context.new_page()
    other_tab.goto("/")
    expect(other_tab.locator("body[data-ready]")).to_be_attached()

    lunch = PauseReason.objects.get(name="Lunch")
    laura.locator("[data-testid=status-select]").select_option(f"paused:{lunch.pk}")
    expect(control).to_have_attribute("data-status", "paused")
    expect(laura.locator("[data-testid=status-select]")).to_have_value(f"paused:{lunch.pk}")
    # Her other tab follows, live.
    expect(other_tab.locator("[data-testid=agent-status]")).to_have_attribute("data-status", "paused")
    profile = AgentProfile.objects.select_related("pause_reason").get(user__username="agent1")
    assert profile.status == "paused" and profile.pause_reason == lunch
    laura.screenshot(path=str(screenshot_dir / "console-status.png"),
                     clip={"x": 0, "y": 0, "width": 1366, "height": 120})

    laura.locator("[data-testid=status-select]").select_option("ready")
    expect(control).to_have_attribute("data-status", "ready")
    # Every console closed: offline once the grace period (1 s here) has passed.
    context.close()
    probe = agent_page("agent3")  # (a page to poll with; agent3's own status is not under test)
    expect_status("agent1", "offline", probe)
    assert StatusPeriod.objects.get(user__username="agent1", ended_at__isnull=True).source == "connection"
    statuses = list(StatusPeriod.objects.filter(user__username="agent1").order_by("started_at", "id")
                    .values_list("status", "pause_name"))
    assert statuses == [("ready", ""), ("paused", "Lunch"), ("ready", ""), ("offline", "")]


def test_transfer_targets_are_agents_who_can_take_it_now(
    agent_page: Callable[..., Page], demo: dict[str, Any], server_url: str, screenshot_dir: Path,
) -> None:
    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550140", name="Rita Vega")
    laura = agent_page("agent1")
    martin = agent_page("agent2")
    expect_status("agent2", "ready", martin)
    new_row(laura, "Rita Vega").get_by_role("button", name=re.compile("Capture")).click()
    expect(laura.locator("[data-testid=composer-text]")).to_be_visible()

    laura.locator("[data-testid=btn-transfer]").click()
    dialog = laura.locator("#dialog")
    carla = dialog.locator("label.option", has_text="Carla Ruiz")  # never logged in
    expect(carla).to_contain_text("Offline")
    expect(carla.locator("input")).to_be_disabled()
    expect(dialog.locator("label.option", has_text="Diego Sosa").locator("input")).to_be_disabled()
    expect(dialog.locator("label.option", has_text="Diego Sosa")).to_contain_text("no WhatsApp skill")
    expect(dialog.locator("label.option", has_text="Martín Pérez")).to_contain_text("Ready")
    expect(dialog.locator("label.option", has_text="Martín Pérez").locator("input")).to_be_enabled()
    laura.screenshot(path=str(screenshot_dir / "console-transfer.png"))
    dialog.get_by_role("button", name="Cancel").click()

    # Martín logs out: he is offline at once, and no longer offered.
    martin.get_by_role("button", name="Log out").click()
    expect_status("agent2", "offline", laura)
    laura.locator("[data-testid=btn-transfer]").click()
    martin_option = laura.locator("#dialog label.option", has_text="Martín Pérez")
    expect(martin_option).to_contain_text("Offline")
    expect(martin_option.locator("input")).to_be_disabled()
