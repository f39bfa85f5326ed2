"""Agent replies through the real API reach the Meta fake in Meta's wire format; retries,
failures and delivery statuses in any order."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp import services
from conversa.whatsapp.models import Line, MessageTemplate, PendingStatus, WebhookEvent
from fakes.meta import VERSION, MetaFake
from fakes.server import Reply, fixture

from .conftest import META_PHONE_NUMBER_ID, META_TOKEN, links_to, meta_payload, post_meta

SEND_PATH = f"/{VERSION}/{META_PHONE_NUMBER_ID}/messages"
CUSTOMER = "5491155550001"


@pytest.fixture
def agent(api: Callable[[str], APIClient]) -> APIClient:
    return api("agent1")


@pytest.fixture
def conversation(meta_fake: MetaFake, meta_line: Line, agent: APIClient) -> Conversation:
    """Ana wrote in on the Meta line and agent1 captured the conversation through the API."""
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = Conversation.objects.get(line=meta_line)
    response = agent.post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert response.status_code == 200, response.content
    return conversation


def reply(agent: APIClient, conversation: Conversation, data: dict[str, Any], *, multipart: bool = False) -> Message:
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    response = agent.post(url, data, format="multipart" if multipart else "json")
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == Message.Status.QUEUED  # persisted before any network call
    return message


def sent_bodies(fake: MetaFake) -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests_to("POST", SEND_PATH)]


def make_due_now() -> None:
    """Run the scheduled retry now instead of waiting for its backoff."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def test_text_reply_quotes_the_customer_message(meta_fake: MetaFake, conversation: Conversation,
                                                agent: APIClient) -> None:
    inbound = conversation.messages.get()
    message = reply(agent, conversation, {"text": "Hola Ana, cuesta $100", "reply_to": inbound.pk})
    drain_tasks()
    requests = meta_fake.requests_to("POST", SEND_PATH)
    assert len(requests) == 1
    assert requests[0].headers["authorization"] == f"Bearer {META_TOKEN}"
    assert requests[0].headers["content-type"].startswith("application/json")
    assert requests[0].json() == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "text",
        "text": {"body": "Hola Ana, cuesta $100"}, "context": {"message_id": inbound.provider_message_id},
        "biz_opaque_callback_data": f"conversa:{message.pk}",
    }
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id == meta_fake.sent_ids[0]


def test_text_without_reply_to_has_no_context(meta_fake: MetaFake, conversation: Conversation,
                                              agent: APIClient) -> None:
    message = reply(agent, conversation, {"text": "¿En qué te ayudo?"})
    drain_tasks()
    assert sent_bodies(meta_fake) == [{"messaging_product": "whatsapp", "recipient_type": "individual",
                                       "to": CUSTOMER, "type": "text", "text": {"body": "¿En qué te ayudo?"},
                                       "biz_opaque_callback_data": f"conversa:{message.pk}"}]


def test_document_is_sent_by_link_with_filename_and_caption(meta_fake: MetaFake, conversation: Conversation,
                                                            agent: APIClient) -> None:
    upload = SimpleUploadedFile("factura.pdf", b"%PDF-1.7 factura", content_type="application/pdf")
    message = reply(agent, conversation, {"file": upload, "text": "Tu factura"}, multipart=True)
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    message.refresh_from_db()
    assert body["type"] == "document" and body["to"] == CUSTOMER
    assert links_to(body["document"].pop("link"), message)
    assert body["document"] == {"filename": "factura.pdf", "caption": "Tu factura"}
    assert message.status == Message.Status.SENT


def test_image_is_sent_by_link(meta_fake: MetaFake, conversation: Conversation, agent: APIClient) -> None:
    upload = SimpleUploadedFile("foto.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32, content_type="image/png")
    message = reply(agent, conversation, {"file": upload}, multipart=True)
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    message.refresh_from_db()
    assert body["type"] == "image"
    assert list(body["image"]) == ["link"] and links_to(body["image"]["link"], message)


def test_template_is_sent_with_name_language_and_body_parameters(meta_fake: MetaFake, conversation: Conversation,
                                                                 agent: APIClient, meta_line: Line) -> None:
    template = MessageTemplate.objects.create(line=meta_line, provider_template_id="1190000000000001",
                                              name="order_update", language="es",
                                              body="Hola {{1}}, tu pedido {{2}} salió")
    message = reply(agent, conversation, {"template": template.pk, "params": ["Ana", "123"]})
    drain_tasks()
    assert sent_bodies(meta_fake) == [{
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "template",
        "template": {"name": "order_update", "language": {"code": "es"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "123"}]}]},
        "biz_opaque_callback_data": f"conversa:{message.pk}",
    }]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.body == "Hola Ana, tu pedido 123 salió"


@pytest.mark.parametrize(("status", "body", "code"), [
    (400, "api_error_130429", "130429"),
    (400, {"error": {"message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                     "type": "OAuthException", "code": 131056}}, "131056"),
    (429, {"error": {"message": "Too many calls", "code": 80007}}, "80007"),
    (503, b"<html>Service Unavailable</html>", "503"),
    (503, {"error": {"message": "(#133004) Server temporarily unavailable", "code": 133004}}, "133004"),
], ids=["130429", "131056", "http429", "http503-html", "133004"])
def test_rate_limits_and_outages_are_retried_until_sent(meta_fake: MetaFake, conversation: Conversation,
                                                        agent: APIClient, status: int, body: Any,
                                                        code: str) -> None:
    answer = fixture("meta", body) if isinstance(body, str) else body
    meta_fake.script("POST", SEND_PATH, Reply(status, answer))
    message = reply(agent, conversation, {"text": "¿Seguís ahí?"})
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.error_code == code
    assert message.next_attempt_at is not None and message.next_attempt_at > timezone.now()
    assert DBTaskResult.objects.filter(status="READY", run_after__gt=timezone.now()).count() == 1
    assert len(meta_fake.requests_to("POST", SEND_PATH)) == 1
    make_due_now()
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id == meta_fake.sent_ids[0]
    assert message.send_attempts == 2
    assert len(meta_fake.requests_to("POST", SEND_PATH)) == 2  # exactly one retry, never a double send


def test_network_errors_are_retried(meta_fake: MetaFake, conversation: Conversation, agent: APIClient,
                                    settings: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings.META_GRAPH_BASE_URL = dead
    message = reply(agent, conversation, {"text": "hola"})
    drain_tasks()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.QUEUED, "network")
    settings.META_GRAPH_BASE_URL = meta_fake.url
    make_due_now()
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


@pytest.mark.parametrize(("answer", "code", "text"), [
    ("api_error_131030", "131030", "Recipient phone number not in allowed list"),
    ("api_error_190", "190", "Access token expired or invalid"),
])
def test_client_errors_fail_at_once_with_the_provider_reason(meta_fake: MetaFake, conversation: Conversation,
                                                             agent: APIClient, answer: str, code: str,
                                                             text: str) -> None:
    meta_fake.script("POST", SEND_PATH, Reply(400 if code != "190" else 401, fixture("meta", answer)))
    message = reply(agent, conversation, {"text": "hola"})
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == code
    assert text in message.error_title
    assert len(meta_fake.requests_to("POST", SEND_PATH)) == 1
    assert not DBTaskResult.objects.filter(status="READY").exists()
    # The agent sees why.
    thread = agent.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    assert [m["error_title"] for m in thread if m["id"] == message.pk] == [message.error_title]


def test_an_expired_token_flags_the_line_until_a_send_succeeds(meta_fake: MetaFake, conversation: Conversation,
                                                               agent: APIClient) -> None:
    meta_fake.script("POST", SEND_PATH, Reply(401, fixture("meta", "api_error_190")))
    reply(agent, conversation, {"text": "hola"})
    drain_tasks()
    line = Line.objects.get(pk=conversation.line_id)
    assert "Access token expired" in line.health_error and line.health_error_at is not None
    lines = agent.get("/api/v1/lines/").json()
    listed = lines["results"] if isinstance(lines, dict) else lines
    assert [item["health_error"] for item in listed if item["id"] == line.pk] == [line.health_error]
    reply(agent, conversation, {"text": "hola otra vez"})  # the admin fixed the token: the fake answers OK
    drain_tasks()
    line.refresh_from_db()
    assert line.health_error == "" and line.health_error_at is None


def _sent_message(meta_fake: MetaFake, conversation: Conversation, agent: APIClient) -> Message:
    message = reply(agent, conversation, {"text": "Tu pedido salió"})
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    return message


def _status(line: Line, name: str, wamid: str) -> None:
    assert post_meta(line, meta_payload(name).replace(b"wamid.OUTBOUND", wamid.encode())).status_code == 200
    drain_tasks()


def test_statuses_only_move_forward_whatever_their_order(meta_fake: MetaFake, conversation: Conversation,
                                                        agent: APIClient, meta_line: Line) -> None:
    message = _sent_message(meta_fake, conversation, agent)
    _status(meta_line, "statuses_read", message.provider_message_id)
    message.refresh_from_db()
    assert message.status == Message.Status.READ
    _status(meta_line, "statuses_sent", message.provider_message_id)  # late
    _status(meta_line, "statuses_delivered", message.provider_message_id)  # later still
    message.refresh_from_db()
    assert message.status == Message.Status.READ
    assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_delivered_status_is_applied(meta_fake: MetaFake, conversation: Conversation, agent: APIClient,
                                            meta_line: Line) -> None:
    message = _sent_message(meta_fake, conversation, agent)
    _status(meta_line, "statuses_delivered", message.provider_message_id)
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_status_arriving_before_the_send_result_is_kept_and_applied(meta_fake: MetaFake,
                                                                     conversation: Conversation,
                                                                     agent: APIClient, meta_line: Line) -> None:
    message = reply(agent, conversation, {"text": "rápido"})
    # Meta's "delivered" beats our send task: it names the wamid the fake is about to return.
    expected_wamid = "wamid.FAKE0001"
    raw = meta_payload("statuses_delivered").replace(b"wamid.OUTBOUND", expected_wamid.encode())
    response = post_meta(meta_line, raw)
    services.process_webhook_event(response.json()["event"])  # process it now, before the send
    assert PendingStatus.objects.filter(provider_message_id=expected_wamid, status="delivered").exists()
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    drain_tasks()  # the send, and the (already processed) webhook task
    message.refresh_from_db()
    assert message.provider_message_id == expected_wamid
    assert message.status == Message.Status.DELIVERED
    assert not PendingStatus.objects.exists()


def test_window_closed_failure_tells_the_agent_to_send_a_template(meta_fake: MetaFake,
                                                                 conversation: Conversation,
                                                                 agent: APIClient, meta_line: Line) -> None:
    message = _sent_message(meta_fake, conversation, agent)
    _status(meta_line, "statuses_failed_131047", message.provider_message_id)
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == "131047"
    assert message.error_title == "Window closed — send a template"
    thread = agent.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    shown = next(m for m in thread if m["id"] == message.pk)
    assert (shown["status"], shown["error_title"]) == ("failed", "Window closed — send a template")


def test_a_failure_never_overrides_a_read_message(meta_fake: MetaFake, conversation: Conversation,
                                                  agent: APIClient, meta_line: Line) -> None:
    message = _sent_message(meta_fake, conversation, agent)
    _status(meta_line, "statuses_read", message.provider_message_id)
    _status(meta_line, "statuses_failed_131047", message.provider_message_id)
    message.refresh_from_db()
    assert message.status == Message.Status.READ and message.error_code == ""
