"""Bulk sends of templates with a media header and a variable link button: one checked, stored header
file every recipient gets by a signed link, each recipient's own button value, and a 400 naming the
field when the file or the values do not fit the template."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conftest import token_client
from conversa.outreach.models import BulkRecipient, BulkSend
from conversa.whatsapp.models import Line, MessageTemplate
from fakes.meta import MetaFake

from .conftest import add_contacts, phone
from .test_bulk_sends import drain_until_done

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CONVERSA_BULK_SLICE_SECONDS = 30


@pytest.fixture
def offer(meta_line: Line) -> MessageTemplate:
    """An approved template with an image header, one body parameter and a variable link button."""
    return MessageTemplate.objects.create(
        line=meta_line, provider_template_id="tpl-offer", name="offer", language="es",
        header="[image]", body="Hola {{1}}, mirá la oferta.", status=MessageTemplate.Status.APPROVED,
        buttons=[{"type": "URL", "text": "Ver", "url": "https://shop.example/o/{{1}}"},
                 {"type": "QUICK_REPLY", "text": "No me interesa"}])


def create(offer: MessageTemplate, line: Line, **fields: Any) -> Any:
    body = {"name": "Oferta", "line": line.pk, "template": offer.pk, "params": ["{first_name}"],
            "source": "database", "rate_per_second": 500, **fields}
    return token_client("supervisor").post("/api/v1/bulk-sends/", body, format="multipart")


def png(name: str = "oferta.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def test_every_recipient_gets_the_header_image_by_link_and_her_own_button_value(
        meta_fake: MetaFake, meta_line: Line, offer: MessageTemplate, supervisor: User) -> None:
    add_contacts(meta_line, 3)
    created = create(offer, meta_line, header_file=png(), button_params=["{first_name}-{plan}"])
    assert created.status_code == 201, created.content
    assert (created.json()["header_kind"], created.json()["header_filename"]) == ("image", "oferta.png")
    job = drain_until_done(BulkSend.objects.get(pk=created.json()["id"]))
    assert job.status == BulkSend.Status.DONE
    assert job.header_media.name.startswith("media/") and "oferta" not in job.header_media.name

    sends = {ref: body for _wamid, ref, body in meta_fake.accepted if ref.startswith("bulk:")}
    assert len(sends) == 3
    for recipient in job.recipients.all():
        components = sends[f"bulk:{recipient.pk}"]["template"]["components"]  # type: ignore[index]
        by_type = {(c["type"], c.get("index")): c for c in components}
        header = by_type[("header", None)]["parameters"][0]
        assert header["type"] == "image"
        link = urlsplit(header["image"]["link"])
        served = Client().get(link.path)  # what Meta fetches: no login, the signature is the permission
        assert served.status_code == 200 and served["Content-Type"] == "image/png"
        assert b"".join(served.streaming_content) == PNG
        n = int(recipient.phone[-2:])
        plan = "oro" if n % 2 else "plata"
        button = by_type[("button", "0")]
        assert (button["sub_type"], button["parameters"]) == ("url", [{"type": "text", "text": f"Cliente{n}-{plan}"}])
        assert by_type[("button", "1")]["sub_type"] == "quick_reply"
        assert by_type[("body", None)]["parameters"][0]["text"] == f"Cliente{n}"


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"button_params": ["x"]}, "header_file", "needs a header file"),  # no file
    ({"header_file": "pdf", "button_params": ["x"]}, "header_file", "needs a header file"),  # a document
    ({"header_file": "png"}, "button_params", "link button"),  # no button value
])
def test_a_file_or_values_that_do_not_fit_the_template_are_a_400_naming_the_field(
        meta_line: Line, offer: MessageTemplate, supervisor: User, fields: dict[str, Any], field: str,
        words: str) -> None:
    add_contacts(meta_line, 1)
    if fields.get("header_file") == "png":
        fields["header_file"] = png()
    elif fields.get("header_file") == "pdf":
        fields["header_file"] = SimpleUploadedFile("oferta.pdf", PDF, content_type="application/pdf")
    refused = create(offer, meta_line, **fields)
    assert refused.status_code == 400, refused.content
    assert refused.json()["field"] == field and words in refused.json()["message"]
    assert not BulkSend.objects.exists()


def test_a_file_for_a_template_without_a_media_header_is_refused(meta_line: Line, template: MessageTemplate,
                                                                 supervisor: User) -> None:
    add_contacts(meta_line, 1)
    refused = create(template, meta_line, params=["{first_name}", "algo"], header_file=png())
    assert (refused.status_code, refused.json()["field"]) == (400, "header_file")


def test_a_recipient_whose_button_value_comes_out_empty_is_skipped_with_the_reason(
        meta_fake: MetaFake, meta_line: Line, offer: MessageTemplate, supervisor: User) -> None:
    add_contacts(meta_line, 2)
    meta_line.campaign.contact_database.contacts.filter(phone=phone(1)).update(custom={})
    created = create(offer, meta_line, header_file=png(), button_params=["{plan}"])
    assert created.status_code == 201, created.content
    job = drain_until_done(BulkSend.objects.get(pk=created.json()["id"]))
    skipped = job.recipients.get(phone=phone(1))
    assert (skipped.status, skipped.reason) == (BulkRecipient.Status.SKIPPED, BulkRecipient.Reason.BAD_PARAMETERS)
    assert "link button" in skipped.error_title
    assert job.recipients.get(phone=phone(0)).status == BulkRecipient.Status.SENT


def test_the_console_form_takes_the_header_file_and_the_button_values(
        meta_fake: MetaFake, meta_line: Line, offer: MessageTemplate, supervisor: User) -> None:
    add_contacts(meta_line, 2)
    browser = Client()
    browser.force_login(supervisor)
    form = browser.get("/supervisor/bulk/new/")
    assert b'name="header_file"' in form.content and b'name="button_params"' in form.content
    fields = {"name": "Oferta", "line": meta_line.pk, "template": offer.pk, "params": "{first_name}",
              "source": "database", "rate": "500"}
    missing = browser.post("/supervisor/bulk/new/", {**fields, "button_params": "x"})
    assert missing.status_code == 400 and b"needs a header file" in missing.content
    preview = browser.post("/supervisor/bulk/preview/", {**fields, "header_file": png(), "button_params": "{plan}"})
    assert b"2 messages will be sent" in preview.content
    created = browser.post("/supervisor/bulk/new/", {**fields, "header_file": png(), "button_params": "{plan}"})
    assert created.status_code == 302, created.content
    job = drain_until_done(BulkSend.objects.get())
    assert job.header_kind == "image" and job.button_params == ["{plan}"]
    assert sorted(r.buttons[0]["value"] for r in job.recipients.all()) == ["oro", "plata"]
