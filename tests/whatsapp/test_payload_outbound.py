"""Issue 13, outbound: named template parameters, media headers and button values, links with a
preview, replies to customers known only by user id, read receipts — the request bodies as the
fake Meta and GupShup receive them (the Meta fake refuses what Meta documents as invalid)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import OutboundMedia, TemplateButtonValue, TemplateExtras
from conversa.whatsapp.models import Line, MessageTemplate
from fakes.gupshup import GupshupFake
from fakes.meta import MetaFake

from .conftest import gupshup_payload, links_to, meta_payload, post_gupshup, post_meta
from .test_meta_sending import SEND_PATH, reply, sent_bodies


@pytest.fixture
def agent(api: Callable[[str], APIClient]) -> APIClient:
    return api("agent1")


def _captured(line: Line, agent: APIClient, **filters: Any) -> Conversation:
    conversation = Conversation.objects.get(line=line, **filters)
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def test_text_with_a_link_asks_for_its_preview(meta_fake: MetaFake, meta_line: Line, agent: APIClient) -> None:
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent)
    reply(agent, conversation, {"text": "Mirá el catálogo: https://example.com/catalogo"})
    reply(agent, conversation, {"text": "Sin enlaces"})
    drain_tasks()
    with_link, without = sent_bodies(meta_fake)
    assert with_link["text"] == {"body": "Mirá el catálogo: https://example.com/catalogo", "preview_url": True}
    assert without["text"] == {"body": "Sin enlaces"}


def test_a_customer_known_only_by_user_id_is_answered_by_recipient(meta_fake: MetaFake, meta_line: Line,
                                                                    agent: APIClient) -> None:
    assert post_meta(meta_line, meta_payload("messages_user_id_only")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent, customer_user_id="AR.1502576394655843")
    message = reply(agent, conversation, {"text": "Hola Lucía"})
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    assert body["recipient"] == "AR.1502576394655843" and "to" not in body
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_named_template_parameters_are_sent_with_their_names(meta_fake: MetaFake, meta_line: Line,
                                                             agent: APIClient) -> None:
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent)
    template = MessageTemplate.objects.create(line=meta_line, provider_template_id="1190000000000009",
                                              name="order_named", language="es",
                                              body="Hola {{first_name}}, tu pedido {{order_id}} salió")
    assert template.param_names == ["first_name", "order_id"] and template.param_count == 2
    message = reply(agent, conversation, {"template": template.pk, "params": ["Ana", "A-77"]})
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    assert body["template"]["components"] == [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
        {"type": "text", "parameter_name": "order_id", "text": "A-77"}]}]
    message.refresh_from_db()
    assert (message.status, message.body) == (Message.Status.SENT, "Hola Ana, tu pedido A-77 salió")


def test_meta_template_media_header_and_buttons(meta_fake: MetaFake, meta_line: Line) -> None:
    extras = TemplateExtras(header=OutboundMedia(kind="image", url="https://conversa.example/media/x.jpg"),
                            buttons=[TemplateButtonValue(index=0, sub_type="url", value="A-77"),
                                     TemplateButtonValue(index=1, sub_type="quick_reply", value="STOP")])
    get_adapter(meta_line).send_template(to="5491155550001", template_name="promo", template_id="1",
                                         language="es", params=["Ana"], extras=extras)
    [body] = sent_bodies(meta_fake)
    assert body["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://conversa.example/media/x.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-77"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1",
         "parameters": [{"type": "payload", "payload": "STOP"}]},
    ]
    assert MetaFake.invalid_send(body) == ""


def test_meta_read_receipt(meta_fake: MetaFake, meta_line: Line) -> None:
    get_adapter(meta_line).mark_read(provider_message_id="wamid.IN0001")
    [request] = meta_fake.requests_to("POST", SEND_PATH)
    assert request.json() == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN0001"}
    assert meta_fake.read_receipts == ["wamid.IN0001"]


def test_gupshup_template_with_a_media_header(gupshup_fake: GupshupFake, gupshup_line: Line) -> None:
    extras = TemplateExtras(header=OutboundMedia(kind="document", url="https://conversa.example/media/f.pdf",
                                                 filename="factura.pdf"))
    get_adapter(gupshup_line).send_template(to="5491155550001", template_name="invoice", template_id="tpl-uuid",
                                            language="es", params=["Ana"], extras=extras)
    [request] = gupshup_fake.requests_to("POST", "/wa/api/v1/template/msg")
    form = request.form()
    assert json.loads(form["template"]) == {"id": "tpl-uuid", "params": ["Ana"]}
    assert json.loads(form["message"]) == {"type": "document", "document": {
        "link": "https://conversa.example/media/f.pdf", "filename": "factura.pdf"}}


@pytest.mark.parametrize("enabled", [True, False])
def test_opening_an_unread_conversation_sends_a_read_receipt_when_the_line_says_so(
        meta_fake: MetaFake, meta_line: Line, agent: APIClient, enabled: bool) -> None:
    Line.objects.filter(pk=meta_line.pk).update(send_read_receipts=enabled)
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent)
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/read/").status_code == 200
    drain_tasks()
    inbound = conversation.messages.get()
    assert meta_fake.read_receipts == ([inbound.provider_message_id] if enabled else [])


def test_gupshup_read_receipt_through_the_partner_api(gupshup_fake: GupshupFake, gupshup_line: Line) -> None:
    gupshup_line.config = {**gupshup_line.config, "app_token": gupshup_fake.app_token}
    gupshup_line.save()
    get_adapter(gupshup_line).mark_read(provider_message_id="ABEGkYaYVSEEAhAL3SLAWwHKeKrt")
    [request] = gupshup_fake.requests_to("POST", f"/partner/app/{gupshup_line.config['app_id']}/v1/event")
    assert request.headers["authorization"] == gupshup_fake.app_token
    assert request.json() == {"type": "message-event", "message": {
        "messaging_product": "whatsapp", "status": "read", "message_id": "ABEGkYaYVSEEAhAL3SLAWwHKeKrt"}}


@pytest.mark.parametrize("enabled", [True, False])
def test_opening_an_unread_gupshup_conversation_sends_a_read_receipt_when_the_line_says_so(
        gupshup_fake: GupshupFake, gupshup_line: Line, agent: APIClient, enabled: bool) -> None:
    Line.objects.filter(pk=gupshup_line.pk).update(
        send_read_receipts=enabled, config={**gupshup_line.config, "app_token": gupshup_fake.app_token})
    assert post_gupshup(gupshup_line, gupshup_payload("message_text")).status_code == 200
    drain_tasks()
    conversation = _captured(gupshup_line, agent)
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/read/").status_code == 200
    drain_tasks()
    inbound = conversation.messages.get()
    assert gupshup_fake.read_receipts == ([inbound.provider_message_id] if enabled else [])


def test_a_template_with_an_image_header_is_sent_with_the_agents_file(meta_fake: MetaFake, meta_line: Line,
                                                                      agent: APIClient) -> None:
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent)
    template = MessageTemplate.objects.create(line=meta_line, provider_template_id="1190000000000010",
                                              name="promo_foto", language="es", header="[image]",
                                              body="Hola {{1}}, mirá la promo")
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    missing = agent.post(url, {"template": template.pk, "params": ["Ana"]}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "file"
    upload = SimpleUploadedFile("promo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32, content_type="image/png")
    message = reply(agent, conversation, {"template": template.pk, "params": ["Ana"], "file": upload}, multipart=True)
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    header, text = body["template"]["components"]
    assert header["type"] == "header" and header["parameters"][0]["type"] == "image"
    assert links_to(header["parameters"][0]["image"]["link"], message)
    assert text == {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_template_link_and_quick_reply_buttons_get_their_values(meta_fake: MetaFake, meta_line: Line,
                                                               agent: APIClient) -> None:
    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = _captured(meta_line, agent)
    template = MessageTemplate.objects.create(
        line=meta_line, provider_template_id="1190000000000011", name="order_link", language="es",
        body="Tu pedido {{1}} salió", buttons=[
            {"type": "URL", "text": "Ver pedido", "url": "https://shop.example/o/{{1}}"},
            {"type": "QUICK_REPLY", "text": "Dejar de recibir"}])
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    missing = agent.post(url, {"template": template.pk, "params": ["A-77"]}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "button_params"
    reply(agent, conversation, {"template": template.pk, "params": ["A-77"], "button_params": ["A-77"]})
    drain_tasks()
    [body] = sent_bodies(meta_fake)
    assert body["template"]["components"][1:] == [
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A-77"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1",
         "parameters": [{"type": "payload", "payload": "Dejar de recibir"}]}]
