"""Bulk sends against the Meta fake: a Meta line with an approved two-parameter template, contacts
in its campaign's database, a supervisor of that campaign."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from tests.whatsapp import conftest as whatsapp

from conftest import drain_tasks
from conversa.contacts.models import Contact, ContactDatabase
from conversa.whatsapp.models import Line, MessageTemplate
from fakes.meta import VERSION
from fakes.server import fixture

META_PHONE_NUMBER_ID, post_meta = whatsapp.META_PHONE_NUMBER_ID, whatsapp.post_meta
meta_fake, meta_line = whatsapp.meta_fake, whatsapp.meta_line  # the Meta fake and a line on it

SEND_PATH = f"/{VERSION}/{META_PHONE_NUMBER_ID}/messages"


@pytest.fixture
def template(meta_line: Line) -> MessageTemplate:
    return MessageTemplate.objects.create(line=meta_line, provider_template_id="tpl-promo", name="promo",
                                          language="es", body="Hola {{1}}, tenemos {{2}} para vos.",
                                          status=MessageTemplate.Status.APPROVED)


@pytest.fixture
def supervisor(meta_line: Line) -> User:
    user = get_user_model().objects.get(username="supervisor")
    meta_line.campaign.supervisors.add(user)
    # A database of the test's own (the demo's has contacts of its own).
    meta_line.campaign.contact_database = ContactDatabase.objects.create(
        name="Bulk test contacts", fields=[{"name": "plan", "label": "Plan", "type": "text"}])
    meta_line.campaign.save(update_fields=["contact_database"])
    return user


def phone(n: int) -> str:
    return f"+54911{50000000 + n:08d}"


def add_contacts(line: Line, count: int, *, start: int = 0) -> list[Contact]:
    database = line.campaign.contact_database
    return Contact.objects.bulk_create(
        Contact(database=database, phone=phone(n), first_name=f"Cliente{n}",
                custom={"plan": "oro" if n % 2 else "plata"}) for n in range(start, start + count))


def meta_status(line: Line, *, items: list[dict[str, Any]]) -> None:
    """One signed Meta webhook with these status items, processed."""
    payload = fixture("meta", "statuses_delivered")
    template = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    payload["entry"][0]["changes"][0]["value"]["statuses"] = [{**template, **item} for item in items]
    assert post_meta(line, json.dumps(payload)).status_code == 200
    drain_tasks()


def customer_writes(line: Line, *, sender: str, text: str, message_id: str) -> None:
    payload = fixture("meta", "messages_text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender.lstrip("+")
    value["messages"][0].update({"from": sender.lstrip("+"), "id": message_id, "text": {"body": text}})
    assert post_meta(line, json.dumps(payload)).status_code == 200
    drain_tasks()
