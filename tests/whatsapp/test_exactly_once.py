"""A customer never gets the same reply twice (issue 8 items 1, 2, 10): a send is repeated by itself
only when it provably never reached the provider; an ambiguous outcome leaves the message
unconfirmed, a status callback carrying our reference reconciles it, and otherwise the agent is
offered to resend it. Real HTTP against the Meta/GupShup fakes, the real database."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.core.worker import sweep
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.whatsapp.adapters.base import SendError
from conversa.whatsapp.adapters.outcomes import status_outcome, transport_error
from conversa.whatsapp.models import Line
from fakes.gupshup import GupshupFake
from fakes.meta import VERSION, MetaFake
from fakes.server import Reply, fixture

from .conftest import META_PHONE_NUMBER_ID, gupshup_payload, meta_payload, post_gupshup, post_meta

SEND_PATH = f"/{VERSION}/{META_PHONE_NUMBER_ID}/messages"


@pytest.fixture
def agent(api: Callable[[str], APIClient]) -> APIClient:
    return api("agent1")


@pytest.fixture
def conversation(meta_fake: MetaFake, meta_line: Line, agent: APIClient, settings: Any) -> Conversation:
    settings.PROVIDER_HTTP_TIMEOUT = 1  # the fake's "timeout" answers after 3 s
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = Conversation.objects.get(line=meta_line)
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def reply(agent: APIClient, conversation: Conversation, text: str) -> Message:
    response = agent.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": text}, format="json")
    assert response.status_code == 201, response.content
    return Message.objects.get(pk=response.json()["id"])


def meta_status(line: Line, *, wamid: str, status: str, reference: str) -> None:
    payload = fixture("meta", "statuses_delivered")
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    item.update(id=wamid, status=status, biz_opaque_callback_data=reference)
    assert post_meta(line, json.dumps(payload)).status_code == 200
    drain_tasks()


# --------------------------------------------------------------------------- classification
def test_only_a_request_that_never_left_is_retryable() -> None:
    import httpx

    request = httpx.Request("POST", "http://provider.test/messages")
    never_left = [httpx.ConnectError("refused", request=request), httpx.ConnectTimeout("slow", request=request)]
    maybe_sent = [httpx.ReadTimeout("no answer", request=request), httpx.ReadError("reset", request=request),
                  httpx.RemoteProtocolError("closed", request=request), httpx.WriteTimeout("w", request=request)]
    assert all(transport_error(e, vendor="X").retryable for e in never_left)
    for exc in maybe_sent:
        error = transport_error(exc, vendor="X")
        assert (error.ambiguous, error.retryable) == (True, False), exc
        assert transport_error(exc, vendor="X", idempotent=True).retryable  # a GET may be repeated
    assert status_outcome(429) == {"retryable": True, "ambiguous": False}
    assert status_outcome(503) == {"retryable": True, "ambiguous": False}
    assert status_outcome(500) == {"retryable": False, "ambiguous": True}
    assert status_outcome(502, not_processed=True) == {"retryable": True, "ambiguous": False}
    assert status_outcome(400) == {"retryable": False, "ambiguous": False}
    assert not SendError("x", retryable=True, ambiguous=True).retryable  # ambiguity wins


# --------------------------------------------------------------------------- Meta, end to end
def test_every_send_carries_our_reference(meta_fake: MetaFake, conversation: Conversation,
                                          agent: APIClient) -> None:
    message = reply(agent, conversation, "hola")
    drain_tasks()
    [(wamid, reference, _body)] = meta_fake.accepted
    assert reference == f"conversa:{message.pk}"
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Message.Status.SENT, wamid)


@pytest.mark.parametrize("fate", ["timeout", "drop"])
def test_an_answer_lost_after_acceptance_is_never_resent_and_the_status_reconciles_it(
        meta_fake: MetaFake, conversation: Conversation, agent: APIClient, meta_line: Line, fate: str) -> None:
    meta_fake.after_accepting.append(fate)
    message = reply(agent, conversation, "¿Seguís ahí?")
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.UNCONFIRMED
    assert message.provider_message_id is None and message.send_claimed_at is None
    assert not DBTaskResult.objects.filter(status="READY").exists()  # no retry scheduled
    # Sweeps (claims, overdue queue) never send it again either.
    sweep()
    drain_tasks()
    assert meta_fake.accepted_per_reference() == {f"conversa:{message.pk}": 1}
    thread = agent.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    assert [(m["status"], m["resend_offered"]) for m in thread if m["id"] == message.pk] == [("unconfirmed", False)]

    [(wamid, reference, _)] = meta_fake.accepted
    meta_status(meta_line, wamid=wamid, status="delivered", reference=reference)
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Message.Status.DELIVERED, wamid)
    assert (message.error_code, message.error_title) == ("", "")


def test_an_unexplained_500_is_ambiguous_not_retried(meta_fake: MetaFake, conversation: Conversation,
                                                     agent: APIClient) -> None:
    meta_fake.script("POST", SEND_PATH, Reply(500, fixture("meta", "api_error_500")))
    message = reply(agent, conversation, "hola")
    drain_tasks()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.UNCONFIRMED, "1")
    assert len(meta_fake.requests_to("POST", SEND_PATH)) == 1


def test_a_late_sent_status_never_undoes_read_and_unconfirmed_only_moves_forward(
        meta_fake: MetaFake, conversation: Conversation, agent: APIClient, meta_line: Line) -> None:
    meta_fake.after_accepting.append("drop")
    message = reply(agent, conversation, "hola")
    drain_tasks()
    [(wamid, reference, _)] = meta_fake.accepted
    meta_status(meta_line, wamid=wamid, status="read", reference=reference)
    meta_status(meta_line, wamid=wamid, status="sent", reference=reference)
    message.refresh_from_db()
    assert message.status == Message.Status.READ


def test_success_after_a_retry_clears_the_old_error(meta_fake: MetaFake, conversation: Conversation,
                                                    agent: APIClient) -> None:
    meta_fake.script("POST", SEND_PATH, Reply(503, b"<html>Service Unavailable</html>"))
    message = reply(agent, conversation, "hola")
    drain_tasks()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.QUEUED, "503")
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert (message.error_code, message.error_title) == ("", "")


def test_an_expired_claim_means_unconfirmed_then_the_agent_decides(
        meta_fake: MetaFake, conversation: Conversation, agent: APIClient, settings: Any) -> None:
    message = reply(agent, conversation, "hola")
    # A worker claimed it and died mid-call (kill -9): its task is gone, the claim stays.
    DBTaskResult.objects.all().delete()
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.CONVERSA_SEND_CLAIM_TIMEOUT + 1)
    Message.objects.filter(pk=message.pk).update(send_claimed_at=long_ago, send_started_at=long_ago,
                                                 send_attempts=1, next_attempt_at=long_ago)
    sweep()
    drain_tasks()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.UNCONFIRMED, "interrupted")
    assert meta_fake.accepted == []  # not sent again by the sweep
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/messages/{message.pk}/resend/").status_code == 409

    settings.CONVERSA_UNCONFIRMED_AFTER = 0
    sweep()
    thread = agent.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    assert [m["resend_offered"] for m in thread if m["id"] == message.pk] == [True]
    console = Client()
    console.force_login(message.conversation.agent)
    page = console.get(f"/console/c/{conversation.pk}/messages/").content.decode()
    assert "Not confirmed — resend?" in page and f"/messages/{message.pk}/resend/" in page

    # Someone else's agent may not; the owner may, once.
    other = Client()
    other.force_login(type(message.conversation.agent).objects.get(username="agent2"))
    assert other.post(f"/console/c/{conversation.pk}/messages/{message.pk}/resend/").status_code == 404
    assert console.post(f"/console/c/{conversation.pk}/messages/{message.pk}/resend/").status_code == 204
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.send_attempts == 2
    assert meta_fake.accepted_per_reference() == {f"conversa:{message.pk}": 1}
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.MESSAGE_RESENT)
    assert entry.data == {"message": message.pk, "attempt": 2} and entry.actor == message.conversation.agent
    assert console.post(f"/console/c/{conversation.pk}/messages/{message.pk}/resend/").status_code == 409


# --------------------------------------------------------------------------- GupShup: recipient + time
def test_gupshup_unconfirmed_send_is_matched_on_recipient_and_time(
        gupshup_fake: GupshupFake, gupshup_line: Line, agent: APIClient) -> None:
    assert post_gupshup(gupshup_line, gupshup_payload("message_text")).status_code == 200
    drain_tasks()
    conversation = Conversation.objects.get(line=gupshup_line)
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    gupshup_fake.script("POST", r"/wa/api/v1/msg", Reply(502, {"status": "error", "message": "Bad gateway"}))
    message = reply(agent, conversation, "hola")
    drain_tasks()
    message.refresh_from_db()
    assert message.status == Message.Status.UNCONFIRMED
    event = json.loads(gupshup_payload("event_sent", gs_id="gs-unknown-to-us"))
    event["payload"]["payload"]["ts"] = int(timezone.now().timestamp())
    event["payload"]["destination"] = conversation.customer_phone.lstrip("+")
    assert post_gupshup(gupshup_line, event).status_code == 200
    drain_tasks()
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Message.Status.SENT, "gs-unknown-to-us")
