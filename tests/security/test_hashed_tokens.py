"""API tokens are stored as digests (django-rest-knox; decisions #68): a copy of the database lets
nobody call the API, each login issues its own token, and an upgrade hashes the keys DRF kept in
clear, then drops their table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from conversa.accounts.tokens import user_for_token


def login(username: str) -> str:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": "demo"}, format="json")
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


def me(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/me/").status_code


def test_only_a_digest_of_each_token_is_stored(demo: dict[str, Any]) -> None:
    key = login("agent1")
    assert me(key) == 200
    stored = AuthToken.objects.get(user__username="agent1")
    assert key not in (stored.digest, stored.token_key)
    assert len(stored.digest) == 128 and len(stored.token_key) < len(key)
    # What a leaked dump holds does not authenticate.
    assert me(stored.digest) == 401
    assert me(stored.token_key) == 401


def test_each_login_has_its_own_token_and_the_oldest_go_beyond_the_limit(demo: dict[str, Any],
                                                                        settings: Any) -> None:
    settings.CONVERSA_API_TOKENS_PER_USER = 3
    keys = [login("agent2") for _ in range(4)]
    assert len(set(keys)) == 4
    assert me(keys[0]) == 401  # the oldest, revoked by the fourth login
    assert [me(key) for key in keys[1:]] == [200, 200, 200]
    assert AuthToken.objects.filter(user__username="agent2").count() == 3


def test_a_hostile_token_header_is_a_401(demo: dict[str, Any]) -> None:
    for key in ["x" * 5000, "é" * 20, "0" * 64]:
        assert me(key) == 401
    assert user_for_token(key="x" * 5000) is None


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_hashes_the_keys_kept_in_clear_and_drops_their_table() -> None:
    user = get_user_model().objects.create_user("old-client", password="unused-password-1")
    created = datetime.now(UTC) - timedelta(hours=1)
    old_key = "0123456789abcdef0123456789abcdef01234567"
    call_command("migrate", "accounts", "0004", verbosity=0)
    try:
        stamp = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE authtoken_token (key varchar(40) NOT NULL PRIMARY KEY, "
                           f"created {stamp} NOT NULL, user_id integer NOT NULL)")
            cursor.execute("INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                           [old_key, created, user.pk])
    finally:
        call_command("migrate", "accounts", verbosity=0)

    assert "authtoken_token" not in connection.introspection.table_names()
    stored = AuthToken.objects.get(user=user)
    assert old_key not in (stored.digest, stored.token_key)
    assert abs(stored.created - created) < timedelta(seconds=1)
    assert user_for_token(key=old_key) == user  # its holder keeps working until it expires
    assert me(old_key) == 200
