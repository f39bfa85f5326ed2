"""Interactive menus: a new conversation first gets the line's menu; the option chosen decides the
campaign (or a sub-menu, or a closing message); no choice within the timeout → the line's campaign."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from conftest import results
from conversa.campaigns.models import Campaign
from conversa.inbox.actions.menu import route_menu_timeouts
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.whatsapp.models import InteractiveMenu, MenuOption


@pytest.fixture
def menu(demo) -> InteractiveMenu:
    main = InteractiveMenu.objects.create(name="Main", header="ACME", body="How can we help?", button="Options",
                                          wrong_choice_message="Please pick one of the options.",
                                          handoff_message="Thanks! An agent will be with you shortly.")
    hours = InteractiveMenu.objects.create(name="Info", body="What do you want to know?", button="Topics")
    MenuOption.objects.create(menu=main, order=1, title="Sales", description="Plans and prices",
                              campaign=Campaign.objects.get(name="Sales"))
    MenuOption.objects.create(menu=main, order=2, title="Support", campaign=Campaign.objects.get(name="Support"))
    MenuOption.objects.create(menu=main, order=3, title="Information", action="submenu", submenu=hours)
    MenuOption.objects.create(menu=hours, order=1, title="Opening hours", action="close",
                              closing_message="We are open 9 to 18, Monday to Friday.")
    line = demo["sales_line"]
    line.menu = main
    line.save()
    return main


def outbound(conversation: Conversation) -> list[str]:
    return list(conversation.messages.filter(direction="out").order_by("id").values_list("body", flat=True))


def test_new_conversation_gets_the_menu_and_waits_outside_the_inboxes(api, customer_says, menu, run_tasks):
    conversation = customer_says("Hola")
    assert conversation.status == Conversation.Status.MENU
    assert results(api("agent1").get("/api/v1/inbox/general/")) == []
    run_tasks()
    sent = Message.objects.get(conversation=conversation, direction="out")
    assert sent.kind == "interactive" and sent.status == Message.Status.SENT
    assert sent.body == "ACME\nHow can we help?\n1. Sales — Plans and prices\n2. Support\n3. Information"
    assert [row["title"] for row in sent.payload["list"]["rows"]] == ["Sales", "Support", "Information"]
    taken = api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/")
    assert taken.status_code == 409 and "menu" in taken.json()["message"]


def test_choosing_an_option_routes_to_its_campaign(api, customer_says, menu):
    conversation = customer_says("Hola")
    routed = customer_says("2")
    assert routed.pk == conversation.pk
    routed.refresh_from_db()
    assert routed.status == "new" and routed.campaign.name == "Support" and routed.menu is None
    assert [c["id"] for c in results(api("agent3").get("/api/v1/inbox/general/"))] == [routed.pk]
    assert results(api("agent1").get("/api/v1/inbox/general/")) == []  # agent1 is not in Support
    assert outbound(routed)[-1] == "Thanks! An agent will be with you shortly."
    event = AuditEntry.objects.get(kind="routed", conversation=routed)
    assert event.data == {"campaign": "Support", "reason": "menu", "option": "Support"}


def test_typing_the_title_also_chooses(customer_says, menu):
    customer_says("Hola")
    conversation = customer_says("sales")
    conversation.refresh_from_db()
    assert conversation.status == "new" and conversation.campaign.name == "Sales"


def test_a_wrong_choice_repeats_the_menu(customer_says, menu):
    conversation = customer_says("Hola")
    customer_says("banana")
    conversation.refresh_from_db()
    assert conversation.status == "menu"
    bodies = outbound(conversation)
    assert bodies[1] == "Please pick one of the options." and bodies[2] == bodies[0]


def test_submenu_then_a_closing_option(customer_says, menu):
    conversation = customer_says("Hola")
    customer_says("3")
    conversation.refresh_from_db()
    assert conversation.status == "menu" and conversation.menu.name == "Info"
    assert outbound(conversation)[-1].startswith("What do you want to know?\n1. Opening hours")
    customer_says("1")
    conversation.refresh_from_db()
    assert conversation.status == "closed" and conversation.closed_by_system
    assert outbound(conversation)[-1] == "We are open 9 to 18, Monday to Friday."


def test_no_choice_within_the_timeout_goes_to_the_lines_campaign(api, customer_says, menu):
    conversation = customer_says("Hola")
    assert route_menu_timeouts() == 0
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - datetime.timedelta(minutes=11))
    assert route_menu_timeouts() == 1
    conversation.refresh_from_db()
    assert conversation.status == "new" and conversation.campaign.name == "Sales"
    assert [c["id"] for c in results(api("agent1").get("/api/v1/inbox/general/"))] == [conversation.pk]
    assert AuditEntry.objects.get(kind="routed").data["reason"] == "menu_timeout"
