"""Issue 7 "one error envelope" and issue 15 item 12: every 4xx of the API has one documented shape, and
the OpenAPI schema agrees with the data (contact `email`)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient
from tests.security.test_bad_input import envelope

from conversa.contacts.models import Contact
from conversa.inbox.models import Conversation


@pytest.fixture
def schema(demo: dict[str, Any]) -> dict[str, Any]:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_every_4xx_kind_uses_the_envelope(api, customer_says):
    conversation = customer_says("Hola")
    anonymous = APIClient()
    assert envelope(anonymous.get("/api/v1/inbox/general/"), 401)["code"] == "not_authenticated"
    envelope(api("agent4").get("/api/v1/inbox/general/"), 403)
    assert envelope(api("agent1").get("/api/v1/conversations/999999/"), 404)["code"] == "not_found"
    envelope(api("agent1").delete(f"/api/v1/conversations/{conversation.pk}/"), 405)
    envelope(api("agent1").post(f"/api/v1/conversations/{conversation.pk}/close/", data="x=1",
                                content_type="text/csv"), 415)
    assert api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    taken = envelope(api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/"), 409)
    assert taken["code"] == "conflict" and taken["extra"]["agent_name"] == "Martín Pérez"
    invalid = envelope(api("agent2").post(f"/api/v1/conversations/{conversation.pk}/close/", {"notes": 1},
                                          format="json"), 400, "disposition")
    assert invalid["extra"]["errors"]["disposition"] == ["This field is required."]
    assert invalid["message"] == "disposition: This field is required."


def test_nested_validation_errors_are_named_by_path(api, demo):
    response = api("agent1").post("/api/v1/conversations/", {
        "line": demo["sales_line"].pk, "phone": "+5491155550042", "template": 1, "params": ["a", 7, {"x": 1}],
    }, format="json")
    body = envelope(response, 400, "params[2]")
    assert list(body["extra"]["errors"]) == ["params[2]"]


def test_the_schema_documents_the_envelope_on_every_operation(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "detail"}
    assert set(error["properties"]) == {"code", "message", "detail", "field", "extra"}
    ref = {"$ref": "#/components/schemas/Error"}
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) > 20
    for path, method, op in operations:
        for code in ("400", "401", "403", "404"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == ref, (path, method, code)
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert response["content"]["application/json"]["schema"] == ref, (path, method, code)


def test_contact_email_schema_and_data_agree(api, schema, customer_says):
    email = schema["components"]["schemas"]["Contact"]["properties"]["email"]
    assert email["format"] == "email" and email.get("nullable") is True
    conversation: Conversation = customer_says("Hola", phone="+5491155550009")
    client = api("agent1")
    assert client.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    julieta = Contact.objects.get(phone="+5491155550009")
    linked = client.post(f"/api/v1/conversations/{conversation.pk}/identify/", {"contact": julieta.pk},
                         format="json")
    assert linked.status_code == 200, linked.content
    assert client.get(f"/api/v1/contacts/{julieta.pk}/").json()["email"] == "julieta@example.com"
    Contact.objects.filter(pk=julieta.pk).update(email="")
    assert client.get(f"/api/v1/contacts/{julieta.pk}/").json()["email"] is None
    found = client.get(f"/api/v1/campaigns/{conversation.campaign_id}/contacts/", {"q": "Julieta"}).json()
    rows: list[dict[str, Any]] = found["results"] if isinstance(found, dict) else found
    assert [row["email"] for row in rows] == [None]


def test_webhook_errors_use_the_envelope(demo: dict[str, Any]) -> None:
    envelope(APIClient().post("/webhooks/sandbox/999999/", data="{}", content_type="application/json"), 404)
