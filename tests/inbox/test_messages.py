"""Replies: queued before any send, sent by the background task, status forward only."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conftest import post_sandbox
from conversa.campaigns.models import QuickReply
from conversa.inbox.models import Conversation, Message
from conversa.realtime.models import EventTarget, StreamEvent
from conversa.whatsapp.models import MessageTemplate

from .relay import relay_server


@pytest.fixture
def attended(api, customer_says) -> Conversation:
    conversation = customer_says("Hola", name="Ana María")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def send(api, conversation: Conversation, payload: dict, user: str = "agent1"):
    return api(user).post(f"/api/v1/conversations/{conversation.pk}/messages/", payload, format="json")


def test_text_is_queued_then_sent_by_the_worker(api, attended, run_tasks):
    response = send(api, attended, {"text": "¡Hola! ¿En qué te ayudo?"})
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == Message.Status.QUEUED and message.provider_message_id is None
    run_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id.startswith("sandbox-")
    thread = api("agent1").get(f"/api/v1/conversations/{attended.pk}/messages/").json()
    assert [m["direction"] for m in thread] == ["in", "out"]
    assert thread[1]["body"] == "¡Hola! ¿En qué te ayudo?"


def test_status_moves_forward_only(api, attended, run_tasks, demo):
    message_id = send(api, attended, {"text": "hola"}).json()["id"]
    run_tasks()
    provider_id = Message.objects.get(pk=message_id).provider_message_id
    for status in ["read", "delivered", "sent"]:  # arrives out of order
        post_sandbox(demo["sales_line"], {"status": {"id": provider_id, "status": status}})
    run_tasks()
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.READ
    post_sandbox(demo["sales_line"], {"status": {"id": provider_id, "status": "failed", "error_code": "1"}})
    run_tasks()
    assert Message.objects.get(pk=message_id).status == Message.Status.READ


def test_quick_reply_fills_placeholders(api, attended, run_tasks):
    greeting = QuickReply.objects.get(title="Greeting")
    response = send(api, attended, {"quick_reply": greeting.pk})
    assert response.status_code == 201
    assert response.json()["body"] == "Hi Ana! I'm Laura from Sales. How can I help?"
    other_campaign = QuickReply.objects.get(title="Ticket opened")
    assert send(api, attended, {"quick_reply": other_campaign.pk}).status_code == 404


def test_template_params_are_checked(api, attended):
    template = MessageTemplate.objects.get(name="order_update")
    ok = send(api, attended, {"template": template.pk, "params": ["Ana", "A-123"]})
    assert ok.status_code == 201
    assert ok.json()["body"] == "Hi Ana, your order A-123 is on its way."
    too_few = send(api, attended, {"template": template.pk, "params": ["Ana"]})
    assert too_few.status_code == 400 and too_few.json()["field"] == "params"
    assert "takes 2 parameter(s); 1 given" in too_few.json()["message"]
    pending = MessageTemplate.objects.get(name="promo_pending")
    assert send(api, attended, {"template": pending.pk, "params": ["Ana"]}).status_code == 400
    other_line = MessageTemplate.objects.get(name="ticket_update")
    assert send(api, attended, {"template": other_line.pk, "params": ["a", "b"]}).status_code == 404


def test_free_text_after_24_hours_needs_a_template(api, attended):
    Conversation.objects.filter(pk=attended.pk).update(
        last_inbound_at=timezone.now() - datetime.timedelta(hours=24, minutes=1))
    for payload in ({"text": "hola"}, {"quick_reply": QuickReply.objects.get(title="Greeting").pk}):
        refused = send(api, attended, payload)
        assert refused.status_code == 422
        assert "template" in refused.json()["message"]
    template = MessageTemplate.objects.get(name="follow_up")
    assert send(api, attended, {"template": template.pk, "params": ["Ana"]}).status_code == 201
    assert attended.messages.filter(direction="out").count() == 1


def test_only_the_conversations_agent_may_write(api, attended, customer_says):
    assert send(api, attended, {"text": "intruso"}, user="agent2").status_code == 404
    assert send(api, attended, {"text": "intruso"}, user="agent4").status_code == 403
    unassigned = customer_says("hola", phone="+5491155550002")
    response = send(api, unassigned, {"text": "sin capturar"})
    assert response.status_code == 403 and "Capture" in response.json()["message"]
    assert Message.objects.filter(direction="out").count() == 0


def test_bad_message_bodies_name_the_problem(api, attended):
    client = api("agent1")
    url = f"/api/v1/conversations/{attended.pk}/messages/"
    malformed = client.post(url, data="{oops", content_type="application/json")
    assert malformed.status_code == 400 and "JSON parse error" in malformed.json()["message"]
    empty = send(api, attended, {})
    assert empty.status_code == 400 and empty.json()["field"] == "text"
    both = send(api, attended, {"text": "a", "quick_reply": 1})
    assert both.status_code == 400
    assert send(api, attended, {"text": "x" * 5000}).status_code == 400
    assert send(api, attended, {"quick_reply": "abc"}).json() == {
        "code": "invalid", "message": "quick_reply: A valid integer is required.",
        "detail": "quick_reply: A valid integer is required.", "field": "quick_reply",
        "extra": {"errors": {"quick_reply": ["A valid integer is required."]}}}


def test_client_message_id_makes_a_resend_harmless(api, attended, run_tasks):
    key = str(uuid.uuid4())
    first = send(api, attended, {"text": "una vez", "client_message_id": key})
    again = send(api, attended, {"text": "una vez", "client_message_id": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    run_tasks()
    assert attended.messages.filter(direction="out").count() == 1


def test_provider_refusal_marks_the_message_failed_with_reason(api, attended, run_tasks, demo):
    provider = demo["sales_line"].provider
    with relay_server() as relay:
        provider.config = {"api_url": relay.url}
        provider.save()
        relay.replies = [(400, {"error": {"code": 131026, "message": "Message undeliverable"}})]
        message_id = send(api, attended, {"text": "hola"}).json()["id"]
        run_tasks()
    message = Message.objects.get(pk=message_id)
    assert relay.received[0]["to"] == "5491155550001" and relay.received[0]["text"] == "hola"
    assert message.status == Message.Status.FAILED
    assert message.error_code == "131026" and message.error_title == "Message undeliverable"
    assert message.send_attempts == 1  # a 4xx that cannot succeed is not retried


def test_transient_errors_are_retried_with_backoff_and_sent_once(api, attended, run_tasks, demo):
    provider = demo["sales_line"].provider
    with relay_server() as relay:
        provider.config = {"api_url": relay.url}
        provider.save()
        relay.replies = [(503, {}), (429, {}), (200, {"id": "relay-ok"})]
        message_id = send(api, attended, {"text": "reintento"}).json()["id"]
        for attempt in range(1, 4):
            run_tasks()
            message = Message.objects.get(pk=message_id)
            if attempt < 3:
                assert message.status == Message.Status.QUEUED
                retry = DBTaskResult.objects.ready().count() + DBTaskResult.objects.filter(
                    status="READY", run_after__gt=timezone.now()).count()
                assert retry == 1 and message.next_attempt_at > timezone.now()
                # Make the scheduled retry due now instead of waiting for the backoff.
                DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
        assert len(relay.received) == 3
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.SENT and message.provider_message_id == "relay-ok"
    assert message.send_attempts == 3


def test_a_retried_task_never_sends_twice(api, attended, run_tasks, demo):
    from conversa.inbox.tasks import send_outbound_message

    provider = demo["sales_line"].provider
    with relay_server() as relay:
        provider.config = {"api_url": relay.url}
        provider.save()
        message_id = send(api, attended, {"text": "una"}).json()["id"]
        send_outbound_message.enqueue(message_id)  # a duplicate task, e.g. from the sweep
        run_tasks()
        assert len(relay.received) == 1


def test_media_upload_is_checked_and_sent(api, attended, run_tasks):
    client = api("agent1")
    url = f"/api/v1/conversations/{attended.pk}/messages/"
    png = SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png")
    ok = client.post(url, {"file": png, "text": "mirá"}, format="multipart")
    assert ok.status_code == 201, ok.content
    assert ok.json()["kind"] == "image" and ok.json()["media_url"] == f"/api/v1/messages/{ok.json()['id']}/media/"
    exe = SimpleUploadedFile("virus.exe", b"MZ", content_type="application/x-msdownload")
    refused = client.post(url, {"file": exe}, format="multipart")
    assert refused.status_code == 400 and "cannot be sent" in refused.json()["message"]
    big = SimpleUploadedFile("big.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024 + 1), content_type="image/jpeg")
    too_big = client.post(url, {"file": big}, format="multipart")
    assert too_big.status_code == 400 and "at most 5 MB" in too_big.json()["message"]
    fake = SimpleUploadedFile("fake.jpg", b"<html>not an image</html>", content_type="image/jpeg")
    assert client.post(url, {"file": fake}, format="multipart").status_code == 400
    run_tasks()
    assert attended.messages.filter(direction="out").count() == 1
    sent = attended.messages.get(direction="out")
    assert sent.status == Message.Status.SENT and sent.body == "mirá" and sent.media_mime == "image/png"


def test_reading_the_thread_is_a_post_that_clears_unread_and_tells_her_screens(api, attended):
    attended.refresh_from_db()
    assert attended.unread_count == 1
    # Fetching the thread changes nothing: a GET has no side effects.
    assert api("agent1").get(f"/api/v1/conversations/{attended.pk}/messages/").status_code == 200
    attended.refresh_from_db()
    assert attended.unread_count == 1
    # Another agent cannot mark it (not hers to see: 404); a supervisor reading it changes nothing.
    assert api("agent2").post(f"/api/v1/conversations/{attended.pk}/read/").status_code == 404
    assert api("supervisor").post(f"/api/v1/conversations/{attended.pk}/read/").json()["unread_count"] == 1
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/read/")
    assert response.status_code == 200 and response.json()["unread_count"] == 0
    attended.refresh_from_db()
    assert attended.unread_count == 0
    read = StreamEvent.objects.filter(type="conversation.read").get()
    assert read.payload["conversation"]["id"] == attended.pk and read.payload["conversation"]["unread_count"] == 0
    assert EventTarget.objects.filter(event=read, group=f"agent-{attended.agent_id}").exists()
    # Reading again: nothing unread, nothing announced.
    assert api("agent1").post(f"/api/v1/conversations/{attended.pk}/read/").status_code == 200
    assert StreamEvent.objects.filter(type="conversation.read").count() == 1
