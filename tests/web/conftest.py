"""Browser-test harness: the real ASGI app (HTTP + websockets + embedded task worker) in a
uvicorn subprocess on the test database, driven by Debian's Chromium through Playwright.

Each test gets fresh demo data (the root conftest's transactional database is flushed after
every test), its own server, and fresh browser contexts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from tests.servers import REPO, running_server, server_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1366, "height": 768}
STARTUP_DEADLINE = 40.0

expect.set_options(timeout=15_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/web/test_console" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def server_url(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server per test, stopped before the test database is flushed: a live worker polling the
    task table would deadlock PostgreSQL's TRUNCATE (and contend with SQLite's DELETEs)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: run `make test` (it installs it) or `make browser-deps`")
    # One process, in-memory channel layer, task worker as a thread: the embedded demo shape.
    env = server_env(CONVERSA_EMBEDDED_WORKER="1", CONVERSA_WORKER_INTERVAL="0.05",
                     MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    with running_server(env=env, logs=tmp_path_factory.mktemp("server"), ready_path="/login/",
                        deadline=STARTUP_DEADLINE) as url:
        yield url


# Module scope: Playwright's sync API keeps an event loop on the main thread while it runs, which
# would break later (non-browser) tests that use async_to_sync.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    # Playwright's sync API keeps an asyncio loop on this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            yield p
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed: run `make test` (it installs it) or `make browser-deps`")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser, server_url: str) -> Iterator[Callable[..., BrowserContext]]:
    contexts: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        ctx = browser.new_context(base_url=server_url, viewport=VIEWPORT, **kwargs)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def agent_page(new_context: Callable[..., BrowserContext], demo: dict[str, Any]) -> Callable[..., Page]:
    """agent_page("agent1") → a logged-in console page in its own browser context."""

    def open_as(username: str, *, context: BrowserContext | None = None) -> Page:
        page = (context or new_context()).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "demo")
        page.click("button[type=submit]")
        expect(page.locator("body[data-ready]")).to_be_attached()
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    return open_as


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """docs/img when UPDATE_SCREENSHOTS=1 (to refresh the user guide's pictures), else tmp."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        path = REPO / "docs" / "img"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path
