"""Issue 15 item 13: API tokens expire (CONVERSA_API_TOKEN_TTL_HOURS), logging out of the console
revokes them, and admins list and revoke them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.models import AuthToken
from rest_framework.test import APIClient

from conversa.accounts.tokens import user_for_token


def issued(username: str = "agent1") -> dict[str, Any]:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": "demo"}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def me(key: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/me/")


def test_a_token_expires_after_its_lifetime_and_a_new_one_is_issued(demo: dict[str, Any], settings: Any) -> None:
    settings.CONVERSA_API_TOKEN_TTL_HOURS = 2
    first = issued()
    expires_at = parse_datetime(first["expires_at"])
    assert expires_at is not None
    assert abs(expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert me(first["token"]).status_code == 200

    AuthToken.objects.filter(user__username="agent1").update(expiry=timezone.now() - timedelta(minutes=1))
    expired = me(first["token"])
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"].lower()
    assert user_for_token(key=first["token"]) is None  # the websocket refuses it too

    second = issued()
    assert second["token"] != first["token"]
    assert me(second["token"]).status_code == 200


def test_logging_out_of_the_console_revokes_the_api_token(demo: dict[str, Any]) -> None:
    token = issued("agent2")["token"]
    console = Client()
    assert console.post("/login/", {"username": "agent2", "password": "demo"}).status_code == 302
    assert me(token).status_code == 200
    assert console.post("/logout/").status_code == 302
    assert me(token).status_code == 401
    assert not AuthToken.objects.filter(user__username="agent2").exists()


def test_admins_list_and_revoke_tokens(demo: dict[str, Any]) -> None:
    token = issued("agent3")["token"]
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    listing = admin.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "agent3" in page and 'class="field-expires_at' in page
    digest = AuthToken.objects.get(user__username="agent3").digest
    revoked = admin.post("/admin/knox/authtoken/", {"action": "revoke", "_selected_action": [digest]})
    assert revoked.status_code == 302
    assert me(token).status_code == 401


def test_agents_cannot_see_tokens_in_the_admin(demo: dict[str, Any]) -> None:
    issued("agent3")
    agent = Client()
    agent.force_login(get_user_model().objects.get(username="agent1"))
    assert agent.get("/admin/knox/authtoken/").status_code == 302  # to the admin login
