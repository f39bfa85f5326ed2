"""Issue 13 items 15/16 on a new conversation: a template with a media header takes its header file,
and dynamic URL buttons their values, when an agent starts a conversation (API and console), as a
reply does — checked against the fake Meta's received request."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line, MessageTemplate
from fakes.meta import MetaFake

from .conftest import links_to
from .test_meta_sending import sent_bodies

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32
PDF = b"%PDF-1.4\n" + b"0" * 32


@pytest.fixture
def agent(api: Callable[[str], APIClient]) -> APIClient:
    return api("agent1")


@pytest.fixture
def promo(meta_line: Line) -> MessageTemplate:
    return MessageTemplate.objects.create(
        line=meta_line, provider_template_id="1190000000000020", name="promo_foto_link", language="es",
        header="[image]", body="Hola {{1}}, mirá la promo", status=MessageTemplate.Status.APPROVED,
        buttons=[{"type": "URL", "text": "Ver promo", "url": "https://shop.example/p/{{1}}"}])


def _png() -> SimpleUploadedFile:
    return SimpleUploadedFile("promo.png", PNG, content_type="image/png")


def _assert_sent_with_header_and_button(meta_fake: MetaFake, conversation: Conversation) -> None:
    drain_tasks()
    message = conversation.messages.get()
    [body] = sent_bodies(meta_fake)
    header, text, button = body["template"]["components"]
    assert header["type"] == "header" and header["parameters"][0]["type"] == "image"
    assert links_to(header["parameters"][0]["image"]["link"], message)
    assert text == {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}
    assert button == {"type": "button", "sub_type": "url", "index": "0",
                      "parameters": [{"type": "text", "text": "P-9"}]}
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.kind == Message.Kind.TEMPLATE


def test_api_new_conversation_with_a_media_header_template(meta_fake: MetaFake, meta_line: Line,
                                                           promo: MessageTemplate, agent: APIClient) -> None:
    base = {"line": meta_line.pk, "phone": "+5491155550077", "template": promo.pk, "params": ["Ana"],
            "button_params": ["P-9"]}
    missing = agent.post("/api/v1/conversations/", base, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "file"
    wrong = agent.post("/api/v1/conversations/", {**base, "file": SimpleUploadedFile(
        "f.pdf", PDF, content_type="application/pdf")}, format="multipart")
    assert wrong.status_code == 400 and wrong.json()["field"] == "file"
    no_button = agent.post("/api/v1/conversations/", {**{k: v for k, v in base.items() if k != "button_params"},
                                                      "file": _png()}, format="multipart")
    assert no_button.status_code == 400 and no_button.json()["field"] == "button_params"
    assert not Conversation.objects.filter(line=meta_line).exists()  # nothing opened by the refusals
    created = agent.post("/api/v1/conversations/", {**base, "file": _png()}, format="multipart")
    assert created.status_code == 201, created.content
    _assert_sent_with_header_and_button(meta_fake, Conversation.objects.get(pk=created.json()["id"]))


def test_console_new_conversation_with_a_media_header_template(meta_fake: MetaFake, meta_line: Line,
                                                               promo: MessageTemplate) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username="agent1"))
    dialog = client.get("/console/new/").content.decode()
    assert 'name="file"' in dialog and 'name="button_params"' in dialog and "multipart/form-data" in dialog
    form = {"line": meta_line.pk, "phone": "+5491155550078", "template": promo.pk, "params": ["Ana"],
            "button_params": "P-9"}
    missing = client.post("/console/start/", form)
    assert missing.status_code == 400 and not Conversation.objects.filter(line=meta_line).exists()
    assert client.post("/console/start/", {**form, "file": _png()}).status_code == 204
    _assert_sent_with_header_and_button(meta_fake, Conversation.objects.get(line=meta_line))
