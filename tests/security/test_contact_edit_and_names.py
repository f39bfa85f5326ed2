"""Issue 15 item 11: who may edit a contact, and errors never name users outside the caller's campaigns."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign
from conversa.contacts.models import Contact, ContactDatabase
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import MessageTemplate

OUTSIDER_NAME = "Olga Outsider"


def logged_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username),
                       backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def julieta(demo: dict[str, Any]) -> Contact:
    return Contact.objects.get(phone="+5491155550009")


@pytest.fixture
def julieta_with_agent1(api: Callable[[str], APIClient], customer_says: Callable[..., Conversation],
                        julieta: Contact) -> Conversation:
    """agent1 attends an open conversation identified as Julieta."""
    conversation = customer_says("Hola", phone="+5491155550009", name="Juli")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    Conversation.objects.filter(pk=conversation.pk).update(contact=julieta)
    return conversation


@pytest.fixture
def outsider(demo: dict[str, Any]) -> User:
    """A WhatsApp agent of a campaign none of the demo agents works in."""
    user = get_user_model().objects.create_user("outsider", password="demo", first_name="Olga", last_name="Outsider")
    AgentProfile.objects.create(user=user, group=AgentGroup.objects.get(name="WhatsApp agents"),
                                status=AgentProfile.Status.READY)
    collections = Campaign.objects.create(name="Collections",
                                          contact_database=ContactDatabase.objects.create(name="Collections db"))
    collections.agents.add(user)
    return user


def extra(response: Any) -> dict[str, Any]:
    """Machine-readable context of an error (under "extra" in the JSON error envelope)."""
    body = response.json()
    return body.get("extra", body)


def patch_contact(client: APIClient, contact: Contact, **fields: Any) -> Any:
    return client.patch(f"/api/v1/contacts/{contact.pk}/", fields, format="json")


def test_api_contact_edit_only_by_the_attending_agent_or_a_supervisor(api, julieta_with_agent1, julieta, demo):
    assert patch_contact(api("agent1"), julieta, city="Córdoba").status_code == 200
    # agent2 may see Julieta (same contact database) but attends no conversation with her.
    refused = patch_contact(api("agent2"), julieta, first_name="Hacked")
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "forbidden"
    assert patch_contact(api("supervisor"), julieta, last_name="F.").status_code == 200
    assert patch_contact(api("admin"), julieta, last_name="Fernández").status_code == 200
    assert patch_contact(api("agent4"), julieta, first_name="Hacked").status_code == 403  # no WhatsApp skill
    julieta.refresh_from_db()
    assert julieta.first_name == "Julieta" and julieta.custom["city"] == "Córdoba"
    # A contact of a database none of her campaigns uses: 404, as if it did not exist.
    support_contact = Contact.objects.create(database=demo["support_line"].campaign.contact_database,
                                             phone="+5491155550077", first_name="Otro")
    assert patch_contact(api("agent1"), support_contact, first_name="X").status_code == 404
    # Once closed, the conversation no longer makes her the contact's editor.
    Conversation.objects.filter(pk=julieta_with_agent1.pk).update(status=Conversation.Status.CLOSED)
    assert patch_contact(api("agent1"), julieta, first_name="Later").status_code == 403


def test_console_contact_edit_from_a_general_inbox_conversation_is_refused(api, customer_says, julieta):
    waiting = customer_says("Hola", phone="+5491155550009", name="Juli")
    Conversation.objects.filter(pk=waiting.pk).update(contact=julieta)
    response = logged_in("agent2").post(f"/console/c/{waiting.pk}/contact/", {"first_name": "Hacked"},
                                        HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    julieta.refresh_from_db()
    assert julieta.first_name == "Julieta"
    # After capturing it, she edits it.
    assert api("agent2").post(f"/api/v1/conversations/{waiting.pk}/capture/").status_code == 200
    saved = logged_in("agent2").post(f"/console/c/{waiting.pk}/contact/", {"first_name": "Julia"},
                                     HTTP_HX_REQUEST="true")
    assert saved.status_code == 204, saved.content
    julieta.refresh_from_db()
    assert julieta.first_name == "Julia"


def _taken_by(user: User, customer_says: Callable[..., Conversation]) -> Conversation:
    conversation = customer_says("Hola", phone="+5491155550031")
    Conversation.objects.filter(pk=conversation.pk).update(agent=user, status=Conversation.Status.ATTENDED)
    return conversation


def test_capture_conflict_does_not_name_a_user_outside_the_callers_campaigns(api, customer_says, outsider):
    conversation = _taken_by(outsider, customer_says)
    for username in ("agent1", "supervisor"):
        lost = api(username).post(f"/api/v1/conversations/{conversation.pk}/capture/")
        assert lost.status_code == 409
        assert OUTSIDER_NAME not in json.dumps(lost.json()) and "outsider" not in json.dumps(lost.json())
        assert extra(lost)["agent_name"] == "another agent" and extra(lost)["agent"] is None
    console = logged_in("agent1").post(f"/console/c/{conversation.pk}/capture/", HTTP_HX_REQUEST="true")
    assert console.status_code == 409 and OUTSIDER_NAME not in console.content.decode()
    # Admins see every name.
    assert extra(api("admin").post(f"/api/v1/conversations/{conversation.pk}/capture/"))["agent_name"] == OUTSIDER_NAME


def test_capture_conflict_still_names_a_colleague(api, customer_says):
    conversation = customer_says("Hola")
    assert api("agent2").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    lost = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert lost.status_code == 409 and extra(lost)["agent_name"] == "Martín Pérez"


def test_transfer_error_does_not_name_a_user_outside_the_callers_campaigns(api, customer_says, outsider):
    conversation = customer_says("Hola")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    for username in ("agent1", "supervisor"):
        refused = api(username).post(f"/api/v1/conversations/{conversation.pk}/transfer/", {"agent": outsider.pk},
                                     format="json")
        assert refused.status_code == 400 and refused.json()["field"] == "agent"
        assert OUTSIDER_NAME not in json.dumps(refused.json()), refused.json()
    # The admin (any id) is outside agent1's campaigns too.
    admin_id = get_user_model().objects.get(username="admin").pk
    refused = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/transfer/", {"agent": admin_id},
                                 format="json")
    assert refused.status_code == 400 and "Ada" not in json.dumps(refused.json())
    # A colleague without the WhatsApp skill is named: she is in agent1's campaign.
    agent4 = get_user_model().objects.get(username="agent4").pk
    colleague = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/transfer/", {"agent": agent4},
                                   format="json")
    assert colleague.status_code == 400 and "Diego Sosa" in json.dumps(colleague.json(), ensure_ascii=False)


def test_outbound_conflict_does_not_name_a_user_outside_the_callers_campaigns(api, demo, outsider):
    # A menu moved this customer's conversation on the Sales line to another campaign, where the
    # outsider attends it.
    Conversation.objects.create(line=demo["sales_line"], campaign=Campaign.objects.get(name="Collections"),
                                customer_phone="+5491155550042", agent=outsider,
                                status=Conversation.Status.ATTENDED)
    template = MessageTemplate.objects.get(name="order_update")
    busy = api("agent1").post("/api/v1/conversations/", {
        "line": demo["sales_line"].pk, "phone": "+5491155550042", "template": template.pk, "params": ["a", "b"],
    }, format="json")
    assert busy.status_code == 409
    assert OUTSIDER_NAME not in json.dumps(busy.json()) and "another agent" in json.dumps(busy.json())
