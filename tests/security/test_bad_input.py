"""Issue 15 items 5 and 7: hostile or careless input is a 4xx in the error envelope, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings
from rest_framework.test import APIClient

from conversa.campaigns.models import DispositionOption
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import WebhookEvent

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def envelope(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is `status` with the one error envelope (and names `field` when given)."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    assert body["detail"] == body["message"]
    assert set(body) <= {"code", "message", "detail", "field", "extra"}, body
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture
def attended(api: Callable[[str], APIClient], customer_says: Callable[..., Conversation]) -> Conversation:
    conversation = customer_says("Hola")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def raw_post(client: APIClient | Client, url: str, body: str | bytes) -> Any:
    return client.post(url, data=body, content_type="application/json")


# --------------------------------------------------------------------------- item 5
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, "[" * 65 + "]" * 65])
def test_deeply_nested_json_is_a_400_on_the_api(api, attended, body):
    client = api("agent1")
    for url in (f"/api/v1/conversations/{attended.pk}/messages/", f"/api/v1/conversations/{attended.pk}/close/",
                f"/api/v1/conversations/{attended.pk}/transfer/", "/api/v1/me/status/"):
        envelope(raw_post(client, url, body), 400)


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_deeply_nested_json_is_a_400_on_the_token_endpoint(demo, body):
    envelope(raw_post(APIClient(), "/api/v1/auth/token/", body), 400)


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, '{"id": "m", "from": "+5491155550001", "x": ' + DEEP + "}"])
def test_deeply_nested_json_is_a_400_on_webhooks_and_not_stored(demo, body):
    envelope(raw_post(Client(), f"/webhooks/sandbox/{demo['sales_line'].pk}/", body), 400)
    assert not WebhookEvent.objects.exists()


def test_non_finite_json_numbers_are_refused(api, attended):
    client = api("agent1")
    quote = DispositionOption.objects.get(campaign__name="Sales", name="Quote sent")
    body = f'{{"disposition": {quote.pk}, "form": {{"amount": 1e999}}}}'
    envelope(raw_post(client, f"/api/v1/conversations/{attended.pk}/close/", body), 400)
    envelope(raw_post(client, f"/api/v1/conversations/{attended.pk}/close/",
                      f'{{"disposition": {quote.pk}, "form": {{"amount": NaN}}}}'), 400)
    assert Conversation.objects.get(pk=attended.pk).status == "attended"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_bodies_over_the_limit_get_a_json_413(api, attended, demo):
    stored = WebhookEvent.objects.count()
    big = json.dumps({"text": "x" * 2000})
    envelope(raw_post(api("agent1"), f"/api/v1/conversations/{attended.pk}/messages/", big), 413)
    envelope(raw_post(APIClient(), "/api/v1/auth/token/", json.dumps({"username": "x" * 2000})), 413)
    form = api("agent1").post(f"/api/v1/conversations/{attended.pk}/messages/", {"text": "x" * 2000},
                              format="multipart")
    envelope(form, 413)
    hook = raw_post(Client(), f"/webhooks/sandbox/{demo['sales_line'].pk}/",
                    json.dumps({"id": "m1", "from": "+5491155550001", "text": "x" * 2000}))
    envelope(hook, 413)
    assert WebhookEvent.objects.count() == stored


# --------------------------------------------------------------------------- item 7
@pytest.mark.parametrize("follow_up_at", ["2030-01-01T10:00:00", "2030-02-30T10:00:00Z", "2030-01-01T25:00:00Z",
                                          "T25:00", "tomorrow", "9999-12-31T23:59:59+99:00"])
def test_close_follow_up_at_must_be_a_real_zoned_date_time(api, attended, follow_up_at):
    callback = DispositionOption.objects.get(campaign__name="Sales", name="Interested, call back")
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/close/",
                                  {"disposition": callback.pk, "follow_up_at": follow_up_at}, format="json")
    envelope(response, 400, "follow_up_at")
    assert Conversation.objects.get(pk=attended.pk).status == "attended"


@pytest.mark.parametrize("amount", ["NaN", "1e999", "-inf", "Infinity", "abc"])
def test_form_numbers_must_be_finite(api, attended, amount):
    quote = DispositionOption.objects.get(campaign__name="Sales", name="Quote sent")
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/close/",
                                  {"disposition": quote.pk, "form": {"amount": amount}}, format="json")
    envelope(response, 400, "amount")


@pytest.mark.parametrize("query, field", [
    ("from=2025-02-30T10:00", "from"), ("to=9999-12-31", "to"), ("from=2025-01-01T10:00:00%2B99:00", "from"),
    ("to=2025-01-01T25:00", "to"), ("campaign=99999999999999999999999", "campaign"),
])
def test_report_ranges_are_validated_on_the_api(api, demo, query, field):
    envelope(api("supervisor").get(f"/api/v1/reports/summary/?{query}"), 400, field)


@pytest.mark.parametrize("query", [
    "from=2025-02-30T10:00", "to=9999-12-31", "from=2025-01-01T10:00:00%2B99:00",
    "agent=99999999999999999999999", "agent=abc", "campaign=99999999999999999999999",
])
@pytest.mark.parametrize("page", ["/supervisor/reports/", "/supervisor/reports/conversations.csv"])
def test_report_pages_and_csv_answer_400_with_a_message(demo, query, page):
    client = Client()
    client.force_login(User.objects.get(username="supervisor"))
    response = client.get(f"{page}?{query}")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert b"must be" in response.content  # English: the client asks for no other language


@pytest.mark.parametrize(("body", "field"), [
    ("null", "body"), ('"agent"', "body"), ("[1, 2]", "body"), ("42", "body"), ('{"agent": "x"}', "agent"),
    ('{"agent": null}', "agent"), ('{"agent": 99999999999999999999999}', "agent"), ('{"agent": [1]}', "agent"),
])
def test_transfer_body_must_name_an_agent(api, attended, body, field):
    response = raw_post(api("agent1"), f"/api/v1/conversations/{attended.pk}/transfer/", body)
    envelope(response, 400, field)
    assert Conversation.objects.get(pk=attended.pk).agent == User.objects.get(username="agent1")


@pytest.mark.parametrize("body, field", [("null", "body"), ('"ready"', "body"), ("[null, null]", "body"),
                                         ('{"status": null}', "status"), ('{"status": ["ready"]}', "status"),
                                         ("{}", "status")])
def test_my_status_body_must_be_an_object_with_a_status(api, demo, body, field):
    envelope(raw_post(api("agent1"), "/api/v1/me/status/", body), 400, field)


@pytest.mark.parametrize("url", ["close/", "transfer/", "identify/", "messages/"])
@pytest.mark.parametrize("body", ["null", '"text"', "[null, null]", "7", "true"])
def test_any_non_object_body_is_a_400_naming_the_body(api, attended, url, body):
    envelope(raw_post(api("agent1"), f"/api/v1/conversations/{attended.pk}/{url}", body), 400, "body")


@pytest.mark.parametrize("body", ["null", "[1]", '"x"'])
def test_non_object_bodies_elsewhere(api, attended, body):
    client = api("agent1")
    envelope(raw_post(client, "/api/v1/conversations/", body), 400, "body")
    identified = client.post(f"/api/v1/conversations/{attended.pk}/identify/", {"first_name": "Ana"}, format="json")
    assert identified.status_code == 200, identified.content
    attended.refresh_from_db()
    # Her own contact or one that does not exist: the body is read first, the same 400 for both.
    for contact_id in (attended.contact_id, 999999):
        contact_body = client.patch(f"/api/v1/contacts/{contact_id}/", data=body, content_type="application/json")
        envelope(contact_body, 400, "body")


@pytest.mark.parametrize("field, value", [("quick_reply", 99999999999999999999999), ("template", -1),
                                          ("reply_to", 10**30)])
def test_out_of_range_ids_are_400(api, attended, field, value):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/messages/", {field: value}, format="json")
    envelope(response, 400, field)


@pytest.mark.parametrize("custom", ["null", '{"plan": "gold"}', "x"])
def test_custom_fields_sent_as_form_text_are_a_400_not_a_500(api, attended, custom):
    # A multipart form sends "custom" as text; found by the schemathesis run.
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/identify/",
                                  {"first_name": "Ana", "custom": custom}, format="multipart")
    envelope(response, 400, "custom")
