"""Issue 15 item 8: WhatsApp's limits are enforced with a 400 naming the field, before anything is sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from tests.security.test_bad_input import envelope

from conversa.campaigns.models import QuickReply
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import MessageTemplate

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def attended(api: Callable[[str], APIClient], customer_says: Callable[..., Conversation]) -> Conversation:
    conversation = customer_says("Hola", name="Ana")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def url(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


def outbound(conversation: Conversation) -> int:
    return Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND).count()


def test_caption_at_most_1024(api, attended):
    client = api("agent1")
    before = outbound(attended)
    too_long = client.post(url(attended), {"file": SimpleUploadedFile("p.png", PNG, "image/png"), "text": "c" * 1025},
                           format="multipart")
    envelope(too_long, 400, "text")
    assert outbound(attended) == before
    ok = client.post(url(attended), {"file": SimpleUploadedFile("p.png", PNG, "image/png"), "text": "c" * 1024},
                     format="multipart")
    assert ok.status_code == 201, ok.content


def test_text_at_most_4096(api, attended):
    client = api("agent1")
    envelope(client.post(url(attended), {"text": "t" * 4097}, format="json"), 400, "text")
    assert client.post(url(attended), {"text": "t" * 4096}, format="json").status_code == 201


def test_quick_reply_rendered_over_4096_is_refused(api, attended):
    reply = QuickReply.objects.create(title="Long", body="x" * 4090 + " {customer.name} {contact.full_name}")
    reply.campaigns.add(attended.campaign)
    Conversation.objects.filter(pk=attended.pk).update(customer_profile_name="Anastasia Long Name")
    before = outbound(attended)
    envelope(api("agent1").post(url(attended), {"quick_reply": reply.pk}, format="json"), 400, "quick_reply")
    assert outbound(attended) == before


@pytest.mark.parametrize("params, field", [
    (["a" * 1025, "b"], "params[0]"), (["Ana", "line\nbreak"], "params[1]"), (["tab\there", "b"], "params[0]"),
    (["five     spaces", "b"], "params[0]"),
])
def test_template_parameters_follow_metas_rules(api, attended, params, field):
    template = MessageTemplate.objects.get(name="order_update")
    response = api("agent1").post(url(attended), {"template": template.pk, "params": params}, format="json")
    envelope(response, 400, field)
    started = api("agent2").post("/api/v1/conversations/", {
        "line": attended.line_id, "phone": "+5491155550077", "template": template.pk, "params": params,
    }, format="json")
    envelope(started, 400, field)


def test_template_parameters_at_the_limit_are_sent(api, attended):
    template = MessageTemplate.objects.get(name="order_update")
    response = api("agent1").post(url(attended), {"template": template.pk, "params": ["a" * 1024, "four    ok"]},
                                  format="json")
    assert response.status_code == 201, response.content
