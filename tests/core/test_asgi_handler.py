"""The HTTP handler (core.handlers, decisions #81) on a real uvicorn server: the middleware and the
view run in one thread hop, and what that changes nothing of — sessions, CSRF, the security
headers, the login page, static files (routed to Django's standard handler) — still holds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from tests.servers import running_server, server_env

from conversa.core.handlers import OneHopASGIHandler, one_hop_middleware

SERVESTATIC = "servestatic.middleware.ServeStaticMiddleware"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_server(env=server_env(CONVERSA_EMBEDDED_WORKER="0"), logs=tmp_path, ready_path="/login/",
                        deadline=60.0) as url:
        yield url


def test_the_one_hop_chain_is_every_middleware_but_the_static_file_one_in_order() -> None:
    assert SERVESTATIC in settings.MIDDLEWARE
    assert one_hop_middleware() == [path for path in settings.MIDDLEWARE if path != SERVESTATIC]


def test_the_chain_runs_synchronously_and_settings_keep_every_middleware() -> None:
    handler = OneHopASGIHandler()
    assert SERVESTATIC in settings.MIDDLEWARE  # set back after loading
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)  # one hop, not one per middleware


def test_pages_keep_their_session_csrf_and_security_headers(server: str, django_user_model: type) -> None:
    django_user_model.objects.create_user(username="hop", password="a long enough secret 42")
    with httpx.Client(base_url=server, timeout=30) as client:
        page = client.get("/login/")
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "csrftoken" in client.cookies
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        refused = httpx.post(f"{server}/login/", data={"username": "hop", "password": "a long enough secret 42"},
                             timeout=30)
        assert refused.status_code == 403  # no CSRF cookie nor token: CsrfViewMiddleware still runs
        signed_in = client.post("/login/", data={"csrfmiddlewaretoken": token[1], "username": "hop",
                                                 "password": "a long enough secret 42"})
        assert signed_in.status_code == 302, signed_in.text
        assert "sessionid" in client.cookies
        me = client.get("/api/v1/me/")
        assert me.status_code == 200 and me.json()["username"] == "hop"


def test_static_files_are_served_with_the_security_headers(server: str) -> None:
    response = httpx.get(f"{server}/static/web/console.css", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"
    missing = httpx.get(f"{server}/static/no-such-file.css", timeout=30)
    assert missing.status_code == 404
    assert missing.headers["x-content-type-options"] == "nosniff"
