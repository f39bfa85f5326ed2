"""A customer's message arrives through the sandbox webhook and lands in the general inbox."""

from __future__ import annotations

from conftest import post_sandbox, results
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import WebhookEvent


def test_message_opens_a_conversation_in_the_general_inbox(api, customer_says):
    conversation = customer_says("Hola, quiero info")
    items = results(api("agent1").get("/api/v1/inbox/general/"))
    assert len(items) == 1
    item = items[0]
    assert item["id"] == conversation.pk
    assert item["customer_phone"] == "+5491155550001"
    assert item["customer_name"] == "Ana"
    assert item["contact"] is None
    assert item["status"] == "new"
    assert item["last_message_preview"] == "Hola, quiero info"
    assert item["last_message_at"]
    assert item["campaign"] == conversation.campaign_id


def test_replayed_webhook_is_acknowledged_and_stored_once(demo, run_tasks):
    payload = {"id": "wamid.replay-1", "from": "+5491155550001", "name": "Ana", "text": "Hola"}
    first = post_sandbox(demo["sales_line"], payload)
    second = post_sandbox(demo["sales_line"], payload)
    # Same id, different bytes (a provider re-serialising): still one message.
    third = post_sandbox(demo["sales_line"], {**payload, "name": "Ana M."})
    run_tasks()
    assert first.status_code == second.status_code == third.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert Message.objects.filter(provider_message_id="wamid.replay-1").count() == 1
    assert WebhookEvent.objects.count() == 2
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_second_message_joins_the_open_conversation(customer_says):
    first = customer_says("Hola")
    second = customer_says("¿Siguen ahí?")
    assert first.pk == second.pk
    assert second.messages.count() == 2
    assert Conversation.objects.count() == 1
    second.refresh_from_db()
    assert second.unread_count == 2


def test_each_line_routes_to_its_campaign(api, customer_says, demo):
    support = customer_says("Tengo un problema", line=demo["support_line"], phone="+5491155550002")
    sales = customer_says("Precio?", phone="+5491155550003")
    agent1 = {c["id"] for c in results(api("agent1").get("/api/v1/inbox/general/"))}
    agent3 = {c["id"] for c in results(api("agent3").get("/api/v1/inbox/general/"))}
    assert agent1 == {sales.pk}
    assert agent3 == {sales.pk, support.pk}


def test_known_phone_is_identified_on_arrival(customer_says):
    # Julieta is in the Sales contact database of the demo.
    conversation = customer_says("Hola", phone="+5491155550009", name="Juli")
    assert conversation.contact is not None
    assert conversation.customer_name == "Julieta Fernández"


def test_customer_text_is_stored_exactly_as_sent(customer_says):
    text = '<script>alert(1)</script> & "quotes" <img src=x onerror=alert(2)>'
    conversation = customer_says(text)
    assert conversation.messages.get().body == text


def test_malformed_webhooks_are_refused_and_store_nothing(demo, client):
    line = demo["sales_line"]
    bad_json = client.post(f"/webhooks/sandbox/{line.pk}/", data="{not json", content_type="application/json")
    unknown_line = client.post("/webhooks/sandbox/99999/", data="{}", content_type="application/json")
    wrong_kind = client.post(f"/webhooks/meta/{line.pk}/", data="{}", content_type="application/json")
    assert bad_json.status_code == 400
    assert unknown_line.status_code == 404
    assert wrong_kind.status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_webhook_secret_is_enforced_when_set(demo, client, run_tasks):
    from conversa.whatsapp.adapters.base import hmac_sha256_signature

    line = demo["sales_line"]
    line.provider.webhook_secret = "s3cret"
    line.provider.save()
    body = b'{"id": "sig-1", "from": "+5491155550001", "name": "Ana", "text": "Hola"}'
    unsigned = client.post(f"/webhooks/sandbox/{line.pk}/", data=body, content_type="application/json")
    forged = client.post(f"/webhooks/sandbox/{line.pk}/", data=body, content_type="application/json",
                         HTTP_X_CONVERSA_SIGNATURE=hmac_sha256_signature(secret="other", body=body))
    signed = client.post(f"/webhooks/sandbox/{line.pk}/", data=body, content_type="application/json",
                         HTTP_X_CONVERSA_SIGNATURE=hmac_sha256_signature(secret="s3cret", body=body))
    run_tasks()
    assert (unsigned.status_code, forged.status_code, signed.status_code) == (401, 401, 200)
    assert Message.objects.filter(provider_message_id="sig-1").count() == 1


def test_thread_follows_the_customers_order_when_webhooks_are_processed_out_of_order(api, demo):
    import datetime

    from conversa.inbox.actions.inbound import receive_inbound
    from conversa.whatsapp.adapters.base import InboundMessage

    line = demo["sales_line"]
    written = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
    # The second message's webhook is processed first (two workers, a congested queue).
    for seconds, text in [(5, "segundo"), (1, "primero")]:
        receive_inbound(line, InboundMessage(provider_message_id=f"ooo-{seconds}", from_phone="+5491155550001",
                                             kind="text", body=text,
                                             timestamp=written + datetime.timedelta(seconds=seconds)))
    conversation = Conversation.objects.get(line=line)
    api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    thread = api("agent1").get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    assert [m["body"] for m in thread] == ["primero", "segundo"]
