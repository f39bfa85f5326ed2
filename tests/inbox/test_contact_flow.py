"""Identify, edit, transfer, close with a disposition, history, and outbound conversations."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from conftest import results
from conversa.campaigns.models import Disposition, DispositionOption
from conversa.contacts.models import Contact
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.whatsapp.models import MessageTemplate


@pytest.fixture
def attended(api, customer_says) -> Conversation:
    conversation = customer_says("Hola", name="ana_99")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def uid(username: str) -> int:
    return get_user_model().objects.get(username=username).pk


def option(campaign: str, name: str) -> DispositionOption:
    return DispositionOption.objects.get(campaign__name=campaign, name=name)


def test_identify_creates_the_contact_and_its_name_is_used_from_then_on(api, attended, customer_says, run_tasks):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/identify/", {
        "first_name": "Ana", "last_name": "López", "email": "ana@example.com", "dni": "30111222", "city": "Salta",
    }, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["customer_name"] == "Ana López"
    contact = Contact.objects.get(pk=response.json()["contact"])
    assert contact.phone == "+5491155550001" and contact.database.name == "Sales contacts"
    assert contact.custom == {"dni": "30111222", "city": "Salta"}
    # Close, then the customer writes again: the new conversation shows the contact's name.
    api("agent1").post(f"/api/v1/conversations/{attended.pk}/close/",
                       {"disposition": option("Sales", "Sale").pk}, format="json")
    later = customer_says("Hola de nuevo", name="ana_99")
    assert later.pk != attended.pk
    item = next(c for c in results(api("agent2").get("/api/v1/inbox/general/")) if c["id"] == later.pk)
    assert item["customer_name"] == "Ana López" and item["contact"] == contact.pk


def test_identify_by_linking_an_existing_contact(api, attended):
    julieta = Contact.objects.get(phone="+5491155550009")
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/identify/", {"contact": julieta.pk},
                                  format="json")
    assert response.status_code == 200
    assert response.json()["customer_name"] == "Julieta Fernández"


def test_identify_rejects_bad_input_and_foreign_contacts(api, attended, demo):
    client = api("agent1")
    url = f"/api/v1/conversations/{attended.pk}/identify/"
    missing_name = client.post(url, {"last_name": "X"}, format="json")
    assert missing_name.status_code == 400 and missing_name.json()["field"] == "first_name"
    bad_email = client.post(url, {"first_name": "A", "email": "nope"}, format="json")
    assert bad_email.status_code == 400 and bad_email.json()["field"] == "email"
    unknown_field = client.post(url, {"first_name": "A", "shoe_size": "42"}, format="json")
    assert unknown_field.status_code == 400 and unknown_field.json()["field"] == "shoe_size"
    other_db = Contact.objects.create(database=demo["support_line"].campaign.contact_database,
                                      phone="+5491155550077", first_name="Otro")
    assert client.post(url, {"contact": other_db.pk}, format="json").status_code == 404
    assert client.post(url, {}, format="json").status_code == 400
    assert Conversation.objects.get(pk=attended.pk).contact is None


def test_edit_contact(api, attended):
    julieta = Contact.objects.get(phone="+5491155550009")
    client = api("agent1")
    # Only the agent attending a conversation with the contact edits it (tests/security covers the rest).
    assert client.post(f"/api/v1/conversations/{attended.pk}/identify/", {"contact": julieta.pk},
                       format="json").status_code == 200
    response = client.patch(f"/api/v1/contacts/{julieta.pk}/", {"last_name": "Fernández Díaz", "city": "Córdoba"},
                            format="json")
    assert response.status_code == 200
    julieta.refresh_from_db()
    assert julieta.last_name == "Fernández Díaz" and julieta.custom["city"] == "Córdoba"
    assert client.patch(f"/api/v1/contacts/{julieta.pk}/", {"phone": "123"}, format="json").status_code == 400
    assert client.patch(f"/api/v1/contacts/{julieta.pk}/", {"first_name": ""}, format="json").status_code == 400
    assert client.patch("/api/v1/contacts/999999/", {"first_name": "X"}, format="json").status_code == 404
    # agent4 has no WhatsApp skill; Support agents cannot see Sales contacts either.
    assert api("agent4").patch(f"/api/v1/contacts/{julieta.pk}/", {"first_name": "X"}, format="json").status_code == 403
    assert AuditEntry.objects.filter(kind="contact_edited", contact=julieta).count() == 1


def test_transfer_to_another_agent(api, attended):
    agents = api("agent1").get(f"/api/v1/campaigns/{attended.campaign_id}/agents/").json()
    by_name = {a["username"]: a for a in agents}
    assert set(by_name) == {"agent1", "agent2", "agent3", "agent4"}
    assert by_name["agent2"]["full_name"] == "Martín Pérez" and by_name["agent2"]["status"] == "ready"
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/transfer/",
                                  {"agent": by_name["agent2"]["id"]}, format="json")
    assert response.status_code == 200 and response.json()["agent"] == uid("agent2")
    assert [c["id"] for c in results(api("agent2").get("/api/v1/inbox/personal/"))] == [attended.pk]
    assert results(api("agent1").get("/api/v1/inbox/personal/")) == []
    # The previous agent can no longer write in it.
    assert api("agent1").post(f"/api/v1/conversations/{attended.pk}/messages/", {"text": "x"},
                              format="json").status_code == 404


def test_transfer_targets_must_be_skilled_campaign_agents(api, attended):
    client = api("agent1")
    url = f"/api/v1/conversations/{attended.pk}/transfer/"
    no_skill = client.post(url, {"agent": uid("agent4")}, format="json")
    assert no_skill.status_code == 400 and "WhatsApp skill" in no_skill.json()["message"]
    outsider = get_user_model().objects.create_user("outsider", password="x")
    assert client.post(url, {"agent": outsider.pk}, format="json").status_code == 400
    assert client.post(url, {"agent": 999999}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    assert api("agent2").post(url, {"agent": uid("agent3")}, format="json").status_code == 404
    assert Conversation.objects.get(pk=attended.pk).agent.username == "agent1"


def test_close_with_disposition_and_history_newest_first(api, attended, customer_says, run_tasks):
    client = api("agent1")
    client.post(f"/api/v1/conversations/{attended.pk}/identify/",
                {"first_name": "Ana"}, format="json")
    contact_id = Conversation.objects.get(pk=attended.pk).contact_id
    closed = client.post(f"/api/v1/conversations/{attended.pk}/close/",
                         {"disposition": option("Sales", "Not interested").pk, "notes": "Caro"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert results(client.get("/api/v1/inbox/personal/")) == []
    run_tasks()
    # The line's goodbye message went out.
    goodbye = Message.objects.get(conversation=attended, direction="out")
    assert goodbye.body == "Thanks for writing to us!" and goodbye.status == Message.Status.SENT

    second = customer_says("Lo pensé mejor", name="ana_99")
    assert second.pk != attended.pk and second.status == "new" and second.contact_id == contact_id
    client.post(f"/api/v1/conversations/{second.pk}/capture/")
    client.post(f"/api/v1/conversations/{second.pk}/close/",
                {"disposition": option("Sales", "Sale").pk, "notes": "Compró plan anual"}, format="json")
    history = results(client.get(f"/api/v1/contacts/{contact_id}/dispositions/"))
    assert [h["option_name"] for h in history] == ["Sale", "Not interested"]
    assert history[0]["notes"] == "Compró plan anual" and history[0]["agent_name"] == "Laura Gómez"
    assert history[0]["campaign_name"] == "Sales" and history[0]["created_at"]


def test_close_validates_the_disposition(api, attended, demo):
    client = api("agent1")
    url = f"/api/v1/conversations/{attended.pk}/close/"
    foreign = client.post(url, {"disposition": option("Support", "Solved").pk}, format="json")
    assert foreign.status_code == 400 and foreign.json()["field"] == "disposition"
    assert client.post(url, {"notes": "x"}, format="json").status_code == 400
    quote = option("Sales", "Quote sent")
    no_amount = client.post(url, {"disposition": quote.pk}, format="json")
    assert no_amount.status_code == 400 and no_amount.json()["field"] == "amount"
    callback = option("Sales", "Interested, call back")
    assert client.post(url, {"disposition": callback.pk}, format="json").json()["field"] == "follow_up_at"
    assert Conversation.objects.get(pk=attended.pk).status == "attended"
    ok = client.post(url, {"disposition": quote.pk, "form": {"amount": "1500", "product": "Plan"}}, format="json")
    assert ok.status_code == 200
    assert Disposition.objects.get(conversation=attended).form_answers == {"amount": 1500.0, "product": "Plan"}
    again = client.post(url, {"disposition": quote.pk, "form": {"amount": 1}}, format="json")
    # She still sees her closed conversation (history), so not a 404: it is already closed.
    assert (again.status_code, again.json()["code"]) == (409, "conflict")


def test_outbound_conversation_with_template_creates_the_contact(api, demo, run_tasks):
    template = MessageTemplate.objects.get(name="order_update")
    response = api("agent2").post("/api/v1/conversations/", {
        "line": demo["sales_line"].pk, "phone": "+54 9 11 5555-0042", "template": template.pk,
        "params": ["Pedro", "B-77"], "contact": {"first_name": "Pedro", "last_name": "Alonso"},
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "attended" and body["agent"] == uid("agent2") and body["is_outbound"]
    assert body["customer_phone"] == "+5491155550042" and body["customer_name"] == "Pedro Alonso"
    assert body["window_open"] is False
    assert [c["id"] for c in results(api("agent2").get("/api/v1/inbox/personal/"))] == [body["id"]]
    run_tasks()
    message = Message.objects.get(conversation_id=body["id"])
    assert message.kind == "template" and message.body == "Hi Pedro, your order B-77 is on its way."
    assert message.status == Message.Status.SENT
    # The same number again while it is open: refused.
    again = api("agent1").post("/api/v1/conversations/", {
        "line": demo["sales_line"].pk, "phone": "+5491155550042", "template": template.pk,
        "params": ["Pedro", "B-77"]}, format="json")
    assert again.status_code == 409


def test_outbound_bad_input(api, demo):
    client = api("agent1")
    template = MessageTemplate.objects.get(name="order_update")
    base = {"line": demo["sales_line"].pk, "phone": "+5491155550042", "template": template.pk,
            "params": ["a", "b"]}
    invalid_phone = client.post("/api/v1/conversations/", {**base, "phone": "12345"}, format="json")
    assert invalid_phone.status_code == 400 and invalid_phone.json()["field"] == "phone"
    assert client.post("/api/v1/conversations/", {**base, "params": ["a"]}, format="json").status_code == 400
    missing = client.post("/api/v1/conversations/", {"phone": "+5491155550042"}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "line"
    assert {"line", "template"} <= set(missing.json()["extra"]["errors"])
    assert client.post("/api/v1/conversations/", {**base, "line": 9999}, format="json").status_code == 404
    support_line = client.post("/api/v1/conversations/", {**base, "line": demo["support_line"].pk}, format="json")
    assert support_line.status_code == 404  # agent1 is not in Support
    no_name = client.post("/api/v1/conversations/", {**base, "contact": {"last_name": "X"}}, format="json")
    assert no_name.status_code == 400 and no_name.json()["field"] == "contact.first_name"
    assert Conversation.objects.count() == 0 and Contact.objects.filter(phone="+5491155550042").count() == 0


def test_every_action_is_audited(api, attended, demo):
    client = api("agent1")
    client.post(f"/api/v1/conversations/{attended.pk}/messages/", {"text": "hola"}, format="json")
    client.post(f"/api/v1/conversations/{attended.pk}/identify/", {"first_name": "Ana"}, format="json")
    client.post(f"/api/v1/conversations/{attended.pk}/transfer/", {"agent": uid("agent2")}, format="json")
    api("agent2").post(f"/api/v1/conversations/{attended.pk}/close/",
                       {"disposition": option("Sales", "Sale").pk}, format="json")
    events = list(AuditEntry.objects.filter(conversation=attended).values_list("kind", "actor__username"))
    assert events == [("created", None), ("captured", "agent1"), ("message_sent", "agent1"),
                      ("identified", "agent1"), ("transferred", "agent1"), ("closed", "agent2")]
    assert all(e.created_at for e in AuditEntry.objects.all())


def test_supervisor_assigns_from_the_general_inbox(api, customer_says):
    from conversa.realtime.models import EventTarget

    waiting = customer_says("Hola", phone="+5491155556001")
    response = api("supervisor").post(f"/api/v1/conversations/{waiting.pk}/transfer/", {"agent": uid("agent2")},
                                      format="json")
    assert response.status_code == 200 and response.json()["status"] == "attended"
    assert response.json()["attended_at"] is not None
    assert [c["id"] for c in results(api("agent2").get("/api/v1/inbox/personal/"))] == [waiting.pk]
    assert results(api("agent1").get("/api/v1/inbox/general/")) == []
    # The other campaign agents are told, so it leaves their New tab live.
    groups = set(EventTarget.objects.filter(event__type="conversation.transferred").values_list("group", flat=True))
    assert f"campaign-{waiting.campaign_id}" in groups and f"agent-{uid('agent2')}" in groups
    # Agents cannot do that: they capture.
    other = customer_says("Hola", phone="+5491155556002")
    assert api("agent1").post(f"/api/v1/conversations/{other.pk}/transfer/", {"agent": uid("agent2")},
                              format="json").status_code == 403
