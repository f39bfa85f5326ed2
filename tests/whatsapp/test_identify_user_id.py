"""Issue 13 item 1 follow-up: identifying a customer WhatsApp knows only by user id (no phone on the
conversation) creates and links the contact — by the user id, or with a phone the agent typed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from conftest import drain_tasks
from conversa.contacts.models import Contact
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import Line

from .conftest import meta_payload, post_meta

LUCIA = "AR.1502576394655843"
TOMAS = "AR.1809937462510098"


@pytest.fixture
def by_user_id(meta_line: Line, api: Any) -> tuple[APIClient, Conversation, Conversation]:
    assert post_meta(meta_line, meta_payload("messages_user_id_only")).status_code == 200
    drain_tasks()
    agent = api("agent1")
    lucia = Conversation.objects.get(line=meta_line, customer_user_id=LUCIA)
    tomas = Conversation.objects.get(line=meta_line, customer_user_id=TOMAS)
    for conversation in (lucia, tomas):
        assert conversation.customer_phone == ""
        assert agent.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return agent, lucia, tomas


def test_api_identifies_customers_known_by_user_id(by_user_id: tuple[APIClient, Conversation, Conversation]) -> None:
    agent, lucia, tomas = by_user_id
    # No phone anywhere: the contact is kept by the user id.
    response = agent.post(f"/api/v1/conversations/{lucia.pk}/identify/", {"first_name": "Lucía"}, format="json")
    assert response.status_code == 200, response.content
    lucia.refresh_from_db()
    assert (lucia.contact.first_name, lucia.contact.phone, lucia.contact.whatsapp_user_id) == ("Lucía", "", LUCIA)
    # A second phone-less customer is a second contact (the empty phone clashes with nothing), and a
    # phone the agent typed is kept with the user id.
    typed = agent.post(f"/api/v1/conversations/{tomas.pk}/identify/",
                       {"first_name": "Tomás", "phone": "+54 9 11 5555-0099"}, format="json")
    assert typed.status_code == 200, typed.content
    tomas.refresh_from_db()
    assert (tomas.contact.phone, tomas.contact.whatsapp_user_id) == ("+5491155550099", TOMAS)
    assert tomas.contact_id != lucia.contact_id


def test_a_typed_phone_that_is_not_a_phone_is_a_400(by_user_id: tuple[APIClient, Conversation, Conversation]) -> None:
    agent, lucia, _tomas = by_user_id
    bad = agent.post(f"/api/v1/conversations/{lucia.pk}/identify/", {"first_name": "Lucía", "phone": "12"},
                     format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "phone"
    assert not Contact.objects.filter(whatsapp_user_id=LUCIA).exists()


def test_console_identifies_a_customer_known_by_user_id(
        by_user_id: tuple[APIClient, Conversation, Conversation]) -> None:
    _agent, lucia, _tomas = by_user_id
    client = Client()
    client.force_login(get_user_model().objects.get(username="agent1"))
    page = client.get(f"/console/c/{lucia.pk}/").content.decode()
    assert 'data-testid="identify-phone"' in page and LUCIA in page
    assert client.post(f"/console/c/{lucia.pk}/identify/", {"first_name": "Lucía"}).status_code == 204
    lucia.refresh_from_db()
    assert (lucia.contact.first_name, lucia.contact.phone, lucia.contact.whatsapp_user_id) == ("Lucía", "", LUCIA)


def test_a_customer_known_by_user_id_finds_her_contact_and_no_one_elses(meta_line: Line) -> None:
    database = meta_line.campaign.contact_database
    lucia = Contact.objects.create(database=database, first_name="Lucía", whatsapp_user_id=LUCIA)
    Contact.objects.create(database=database, first_name="Otro", whatsapp_user_id="AR.999")  # phone empty too
    assert post_meta(meta_line, meta_payload("messages_user_id_only")).status_code == 200
    drain_tasks()
    assert Conversation.objects.get(line=meta_line, customer_user_id=LUCIA).contact_id == lucia.pk
    assert Conversation.objects.get(line=meta_line, customer_user_id=TOMAS).contact_id is None
