"""Issue 15 item 4: one login limiter (django-axes) for the API token endpoint, the console login and
the admin login, per account and per client address, shared by every process, trusting forwarded
headers only behind our TLS proxy. These run with the real limits (settings.AXES_FAILURE_LIMIT)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient
from tests.servers import REPO, Processes, local_url, server_env

ATTACKS = 30  # the review's 30 wrong admin passwords


def wrong_then_right(post: Callable[[str], Any]) -> tuple[list[Any], Any]:
    failures = [post(f"wrong-{n}") for n in range(ATTACKS)]
    return failures, post("demo")


def test_admin_login_is_locked_after_repeated_failures(demo: dict[str, Any]) -> None:
    client = Client()
    failures, right = wrong_then_right(lambda password: client.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": password}))
    assert failures[0].status_code == 200  # the form again, with its error
    assert right.status_code == 429
    assert "Too many failed login attempts" in right.content.decode()
    assert client.get("/admin/").status_code == 302  # still not logged in
    attempt = AccessAttempt.objects.get(username="admin")  # the audit entry, listed in the admin
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    assert AccessFailureLog.objects.filter(username="admin", locked_out=True).exists()


def test_console_login_is_locked_after_repeated_failures(demo: dict[str, Any]) -> None:
    client = Client()
    failures, right = wrong_then_right(lambda password: client.post(
        "/login/", {"username": "agent1", "password": password}))
    assert failures[0].status_code == 200
    assert right.status_code == 429
    page = right.content.decode()
    assert 'data-testid="locked-out"' in page and "Too many failed login attempts" in page
    assert client.get("/").status_code == 302  # the console still sends her to the login page
    assert AccessAttempt.objects.filter(username="agent1").exists()


def test_token_endpoint_is_locked_after_repeated_failures(demo: dict[str, Any]) -> None:
    client = APIClient()
    failures, right = wrong_then_right(lambda password: client.post(
        "/api/v1/auth/token/", {"username": "agent2", "password": password}, format="json"))
    assert failures[0].status_code == 400
    assert right.status_code == 429
    body = right.json()
    assert "Too many failed login attempts" in body["detail"]
    assert body.get("code", "locked_out") == "locked_out"  # the envelope's code, where the handler adds it
    assert "token" not in body


def test_failures_on_one_surface_lock_the_others(demo: dict[str, Any]) -> None:
    api = APIClient()
    for n in range(settings.AXES_FAILURE_LIMIT):
        api.post("/api/v1/auth/token/", {"username": "agent1", "password": f"x{n}"}, format="json")
    console = Client(REMOTE_ADDR="198.51.100.20")  # another address: the account itself is locked
    assert console.post("/login/", {"username": "agent1", "password": "demo"}).status_code == 429
    assert Client().post("/admin/login/", {"username": "agent1", "password": "demo"}).status_code == 429


def test_an_address_guessing_many_accounts_is_locked(demo: dict[str, Any]) -> None:
    """Per client address: spraying one password over many usernames locks the address, not only
    each account; other addresses keep working."""
    attacker = APIClient(REMOTE_ADDR="203.0.113.7")
    for n in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/api/v1/auth/token/", {"username": f"nobody{n}", "password": "demo"}, format="json")
    locked = attacker.post("/api/v1/auth/token/", {"username": "agent2", "password": "demo"}, format="json")
    assert locked.status_code == 429
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.8")
    assert elsewhere.post("/api/v1/auth/token/", {"username": "agent2", "password": "demo"},
                          format="json").status_code == 200


def test_a_forged_x_forwarded_for_does_not_reset_the_count(demo: dict[str, Any]) -> None:
    """Without BEHIND_TLS_PROXY the client address is the TCP peer: a new X-Forwarded-For on every
    attempt (which used to give every guess a fresh throttle bucket) changes nothing."""
    assert not settings.BEHIND_TLS_PROXY
    client = APIClient()
    for n in range(ATTACKS):
        client.post("/api/v1/auth/token/", {"username": f"nobody{n}", "password": "guess"}, format="json",
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n + 1}")
    right = client.post("/api/v1/auth/token/", {"username": "agent3", "password": "demo"}, format="json",
                        HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert right.status_code == 429


def _client_address(*, behind_proxy: bool, tmp_path: Path) -> str:
    """The address the limiter sees for a request from 127.0.0.1 (our proxy) with
    X-Forwarded-For: "<forged>, <what the proxy saw>", in a process with the given environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "BEHIND_TLS_PROXY", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "conversa.settings", "CONVERSA_VAR_DIR": str(tmp_path),
                "BEHIND_TLS_PROXY": "1" if behind_proxy else "0"})
    code = ("import django; django.setup()\n"
            "from django.test import RequestFactory\n"
            "from axes.helpers import get_client_ip_address\n"
            "r = RequestFactory().post('/login/', REMOTE_ADDR='127.0.0.1',"
            " HTTP_X_FORWARDED_FOR='192.0.2.99, 203.0.113.50')\n"
            "print(get_client_ip_address(r))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO / "src", env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_forwarded_addresses_are_trusted_only_behind_the_tls_proxy(tmp_path: Path) -> None:
    assert _client_address(behind_proxy=False, tmp_path=tmp_path) == "127.0.0.1"
    # Behind our proxy: the address it appended (right-most), never the client-supplied left part.
    assert _client_address(behind_proxy=True, tmp_path=tmp_path) == "203.0.113.50"


# --------------------------------------------------------------------------- across processes
@pytest.fixture
def two_servers(demo: dict[str, Any], tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes on the test database (no shared memory between them)."""
    env = server_env(CONVERSA_EMBEDDED_WORKER="0", MEDIA_ROOT=str(tmp_path / "media"))
    with Processes(tmp_path) as servers:
        # Both start before either is waited for.
        urls = {f"server{n}": local_url(servers.start_uvicorn(f"server{n}", env=env)) for n in range(2)}
        for name, url in urls.items():
            servers.wait_http(name, f"{url}/login/", deadline=40)
        yield list(urls.values())


def _console_login(*, base_url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=10) as browser:
        browser.get("/login/")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/login/").text)
        assert match
        return browser.post("/login/", data={"username": username, "password": password,
                                             "csrfmiddlewaretoken": match.group(1)})


def test_the_limit_is_shared_by_every_process(two_servers: list[str]) -> None:
    """Failures spread over two server processes add up: the old per-process throttle let each
    process take its own 20 guesses a minute."""
    assert get_user_model().objects.filter(username="agent1").exists()
    first, second = two_servers
    codes = []
    for n in range(ATTACKS):
        url = first if n % 2 else second
        codes.append(httpx.post(f"{url}/api/v1/auth/token/", json={"username": "agent1", "password": f"w{n}"},
                                timeout=10).status_code)
    assert codes[0] == 400 and codes[-1] == 429
    for url in two_servers:
        right = httpx.post(f"{url}/api/v1/auth/token/", json={"username": "agent1", "password": "demo"}, timeout=10)
        assert right.status_code == 429, right.text
    # The same lock holds on the console login of either process.
    console = _console_login(base_url=first, username="agent1", password="demo")
    assert console.status_code == 429 and 'data-testid="locked-out"' in console.text
