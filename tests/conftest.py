"""Shared fixtures: a real database (SQLite file or PostgreSQL via DATABASE_URL), the demo data,
token-authenticated API clients, the real task worker drained in-process, sandbox webhooks."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from conversa.accounts.models import AgentProfile
from conversa.accounts.tokens import token_lifetime
from conversa.core.worker import make_worker
from conversa.inbox.models import Conversation
from conversa.web.demo import load_demo
from conversa.whatsapp.models import Line

_ids = itertools.count(1)

# Demo users are recreated for every test: a slow password hash would dominate the run.
# Set in the environment too, so servers the tests start as subprocesses agree.
os.environ["CONVERSA_FAST_PASSWORD_HASHING"] = "1"
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _database(transactional_db: None) -> None:
    """Every test runs on a real, committed database: on_commit hooks and tasks behave as in
    production (no test-wide transaction hiding them)."""


@pytest.fixture
def demo() -> dict[str, Any]:
    load_demo()
    # The demo leaves agents offline until they open the console; the suite starts mid-shift, with
    # every agent ready (tests of status and presence set their own).
    AgentProfile.objects.filter(role=AgentProfile.Role.AGENT).update(status=AgentProfile.Status.READY)
    return {
        "sales_line": Line.objects.get(number="+15550100001"),
        "support_line": Line.objects.get(number="+15550100002"),
    }


def api_token(username: str) -> str:
    """A fresh API token for the user, as a login at the token endpoint would give her (without
    counting toward her limit of live tokens)."""
    user = get_user_model().objects.get(username=username)
    _token, key = AuthToken.objects.create(user=user, expiry=token_lifetime())
    return str(key)


def token_client(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(username)}")
    return client


@pytest.fixture
def api(demo: dict[str, Any]) -> Callable[[str], APIClient]:
    """api("agent1") → an APIClient authenticated with agent1's token."""
    return token_client


def drain_tasks() -> None:
    """Run every due background task and stored webhook event (claimed in batches, as workers do)
    with the real worker, until none is left."""
    make_worker(batch=True, interval=0).run()


@pytest.fixture
def run_tasks() -> Callable[[], None]:
    return drain_tasks


def post_sandbox(line: Line, payload: Any, client: APIClient | None = None) -> Any:
    client = client or APIClient()
    return client.post(f"/webhooks/sandbox/{line.pk}/", data=json.dumps(payload), content_type="application/json")


@pytest.fixture
def customer_says(demo: dict[str, Any]) -> Callable[..., Conversation]:
    """customer_says("Hola") → the customer's message is webhooked in, processed, and its
    conversation returned."""

    def say(text: str, *, phone: str = "+5491155550001", name: str = "Ana", line: Line | None = None,
            message_id: str | None = None) -> Conversation:
        line = line or demo["sales_line"]
        mid = message_id or f"sbx-in-{next(_ids)}-{phone}"
        response = post_sandbox(line, {"id": mid, "from": phone, "name": name, "text": text})
        assert response.status_code == 200, response.content
        drain_tasks()
        return Conversation.objects.get(line=line, customer_phone=phone, messages__provider_message_id=mid)

    return say


def results(response: Any) -> list[dict[str, Any]]:
    data = response.json()
    return data["results"] if isinstance(data, dict) and "results" in data else data
