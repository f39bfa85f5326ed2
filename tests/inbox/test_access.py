"""Authentication and visibility: who sees which inbox."""

from __future__ import annotations

from rest_framework.test import APIClient

from conftest import results


def test_token_login(demo):
    client = APIClient()
    ok = client.post("/api/v1/auth/token/", {"username": "agent1", "password": "demo"}, format="json")
    bad = client.post("/api/v1/auth/token/", {"username": "agent1", "password": "nope"}, format="json")
    missing = client.post("/api/v1/auth/token/", {"username": "agent1"}, format="json")
    assert ok.status_code == 200 and len(ok.json()["token"]) == 64
    assert bad.status_code == 400
    assert missing.status_code == 400 and missing.json()["field"] == "password"
    client.credentials(HTTP_AUTHORIZATION=f"Token {ok.json()['token']}")
    assert client.get("/api/v1/inbox/general/").status_code == 200


def test_anonymous_and_bad_tokens_are_refused(demo):
    client = APIClient()
    assert client.get("/api/v1/inbox/general/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    assert client.get("/api/v1/inbox/personal/").status_code == 401


def test_agent_without_whatsapp_skill_gets_403(api, customer_says):
    customer_says("Hola")
    for path in ("/api/v1/inbox/general/", "/api/v1/inbox/personal/", "/api/v1/lines/"):
        response = api("agent4").get(path)
        assert response.status_code == 403, path
        assert "WhatsApp skill" in response.json()["message"]


def test_conversation_of_another_campaign_is_invisible(api, customer_says, demo):
    support = customer_says("Ayuda", line=demo["support_line"])
    agent1 = api("agent1")
    assert agent1.get(f"/api/v1/conversations/{support.pk}/").status_code == 404
    assert agent1.get(f"/api/v1/conversations/{support.pk}/messages/").status_code == 404
    assert agent1.post(f"/api/v1/conversations/{support.pk}/capture/").status_code == 404
    assert api("agent3").get(f"/api/v1/conversations/{support.pk}/").status_code == 200


def test_personal_inbox_lists_only_her_open_conversations(api, customer_says):
    mine = customer_says("uno", phone="+5491155550001")
    theirs = customer_says("dos", phone="+5491155550002")
    customer_says("tres", phone="+5491155550003")
    assert api("agent1").post(f"/api/v1/conversations/{mine.pk}/capture/").status_code == 200
    assert api("agent2").post(f"/api/v1/conversations/{theirs.pk}/capture/").status_code == 200
    personal = results(api("agent1").get("/api/v1/inbox/personal/"))
    assert [c["id"] for c in personal] == [mine.pk]
    assert personal[0]["status"] == "attended"
    general = {c["id"] for c in results(api("agent1").get("/api/v1/inbox/general/"))}
    assert mine.pk not in general and theirs.pk not in general and len(general) == 1


def test_unknown_conversation_is_404(api, demo):
    assert api("agent1").get("/api/v1/conversations/424242/").status_code == 404
    assert api("agent1").post("/api/v1/conversations/424242/capture/").status_code == 404


def test_openapi_schema_and_docs_are_served(client, demo):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/conversations/{id}/capture/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_health_endpoint_reports_database_and_webhook_backlog(client, demo):
    import datetime

    from django.utils import timezone

    from conversa.whatsapp.models import WebhookEvent

    healthy = client.get("/healthz/").json()
    assert (healthy["status"], healthy["database"], healthy["webhook_backlog"]["pending"]) == ("ok", "ok", 0)
    event = WebhookEvent.objects.create(line=demo["sales_line"], provider_kind="sandbox", body=b"{}",
                                        body_sha256="x" * 64)
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - datetime.timedelta(minutes=5))
    assert client.get("/healthz/").json()["webhook_backlog"]["pending"] == 1


def test_password_guessing_is_locked_out(demo, settings):
    """The login limiter (tests/security/test_login_limiter.py covers every surface)."""
    client = APIClient()
    codes = [client.post("/api/v1/auth/token/", {"username": "agent1", "password": f"guess{n}"},
                         format="json").status_code for n in range(settings.AXES_FAILURE_LIMIT + 2)]
    assert codes[:settings.AXES_FAILURE_LIMIT - 1] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert codes[-1] == 429
