"""Every request reads the signed-in user's profile and group (role, status, skills): they come in
the statement that finds her, by token or by session, not in two more round trips."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from tests.conftest import api_token

PROFILE_TABLES = ('FROM "accounts_agentprofile"', 'FROM "accounts_agentgroup"')


def statements_of(client: Client | APIClient, path: str) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(path)
    return response, seen


def assert_profile_read_with_user(response: Any, seen: list[str]) -> None:
    assert response.status_code == 200, response.content
    me = response.json()
    assert me["username"] == "agent1" and me["status"] == "ready" and me["whatsapp"] is True
    assert [sql for sql in seen if sql.lstrip().startswith("SELECT") and any(t in sql for t in PROFILE_TABLES)
            and "JOIN" not in sql] == []


def test_a_token_request_reads_her_profile_and_group_with_her(demo: dict[str, Any]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token('agent1')}")
    assert_profile_read_with_user(*statements_of(client, "/api/v1/me/"))


def test_a_session_reads_her_profile_and_group_with_her(demo: dict[str, Any]) -> None:
    client = Client()
    assert client.post("/login/", {"username": "agent1", "password": "demo"}).status_code == 302
    assert client.session["_auth_user_backend"] == "conversa.accounts.backends.ModelBackendWithProfile"
    assert_profile_read_with_user(*statements_of(client, "/api/v1/me/"))


def test_a_session_signed_in_through_django_model_backend_stays_valid(demo: dict[str, Any]) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username="agent1"),
                       backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["username"] == "agent1"


def test_a_wrong_password_is_refused_and_counted_once(demo: dict[str, Any]) -> None:
    client = Client()
    assert client.post("/login/", {"username": "agent1", "password": "not-hers"}).status_code == 200
    assert client.get("/").status_code == 302
    assert AccessAttempt.objects.get(username="agent1").failures_since_start == 1


def test_her_status_answer_shows_what_she_set(demo: dict[str, Any]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token('agent1')}")
    answer = client.post("/api/v1/me/status/", {"status": "paused"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "paused"
    assert client.get("/api/v1/me/").json()["status"] == "paused"
