"""The audit log page: what happened to conversations and contacts and every configuration change
made in the back office, filtered by actor, conversation, contact, kind and date; admins see all, a
supervisor only her campaigns."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign, TimeGroup
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import Line

from .forms import form_data

AUDIT = "/supervisor/audit/"


def client_for(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def rows(page: Any) -> list[str]:
    """The table's rows as text (one string per row)."""
    html = page.content.decode()
    body = html.split('data-testid="audit-rows"')[1].split("</tbody>")[0]
    return [r.split(">", 1)[1] for r in body.split("<tr")[2:]]


def test_configuration_changes_are_recorded_and_shown(admin_client: Client, demo: dict[str, Any]) -> None:
    line: Line = demo["sales_line"]
    url = f"/admin/whatsapp/line/{line.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), form_id="line_form")
    data.update({"welcome_message": "¡Bienvenida!", "_save": "Save"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Sales")
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), form_id="campaign_form")
    data.update({"routing": "least_busy", "_save": "Save"})
    assert admin_client.post(url, data).status_code == 302
    group_add = "/admin/campaigns/timegroup/add/"
    data = form_data(admin_client.get(group_add).content.decode(), form_id="timegroup_form")
    assert admin_client.post(group_add, {**data, "name": "Weekends", "timezone": "UTC"}).status_code == 302

    reply_add = "/admin/campaigns/quickreply/add/"
    data = form_data(admin_client.get(reply_add).content.decode(), form_id="quickreply_form")
    data.update({"title": "Goodbye", "body": "Bye {contact.first_name}!", "campaigns": [str(campaign.pk)]})
    assert admin_client.post(reply_add, data).status_code == 302
    profile = AgentProfile.objects.get(user__username="agent2")
    url = f"/admin/accounts/agentprofile/{profile.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), form_id="agentprofile_form")
    assert admin_client.post(url, {**data, "capacity": "9"}).status_code == 302

    config = rows(admin_client.get(AUDIT, {"kind": "config"}))
    assert any("quick reply" in r and "Goodbye" in r and "added" in r for r in config), config
    assert any("agent profile" in r and "agent2" in r and "Capacity" in r for r in config), config
    assert any("line" in r and line.number in r and "Welcome message" in r for r in config), config
    assert any("campaign" in r and "Sales" in r and "Routing" in r for r in config), config
    assert any("time group" in r and "Weekends" in r and "added" in r for r in config), config
    admin = get_user_model().objects.get(username="admin")
    assert len(rows(admin_client.get(AUDIT, {"kind": "config", "actor": admin.pk}))) == 5
    assert "Nothing recorded" in rows(admin_client.get(AUDIT, {"kind": "captured"}))[0]
    # The supervisor of Sales sees the change of her campaign, not the line's or the time group's.
    seen = rows(client_for("supervisor").get(AUDIT, {"kind": "config"}))
    assert len(seen) == 1 and "Sales" in seen[0]
    assert TimeGroup.objects.filter(name="Weekends").exists()


def test_filters_by_conversation_contact_actor_kind_and_date(customer_says: Callable[..., Conversation],
                                                              api: Any) -> None:
    first = customer_says("hola", phone="+5491155557001")
    second = customer_says("hola", phone="+5491155557002")
    assert api("agent1").post(f"/api/v1/conversations/{first.pk}/capture/").status_code == 200
    assert api("agent2").post(f"/api/v1/conversations/{second.pk}/capture/").status_code == 200
    identified = api("agent1").post(f"/api/v1/conversations/{first.pk}/identify/",
                                    {"first_name": "Ana", "last_name": "Pérez"}, format="json")
    assert identified.status_code == 200, identified.content
    contact_id = Conversation.objects.get(pk=first.pk).contact_id
    admin = client_for("admin")

    only_first = rows(admin.get(AUDIT, {"conversation": first.pk}))
    assert len(only_first) == 3 and all(f"#{first.pk}<" in r for r in only_first)  # created, captured, identified
    agent1 = get_user_model().objects.get(username="agent1")
    by_agent1 = rows(admin.get(AUDIT, {"actor": agent1.pk}))
    assert len(by_agent1) == 2 and all(f"#{first.pk}<" in r for r in by_agent1)
    captures = rows(admin.get(AUDIT, {"kind": "captured"}))
    assert len(captures) == 2 and all("Captured" in r for r in captures)
    by_contact = rows(admin.get(AUDIT, {"contact": contact_id}))
    assert len(by_contact) >= 1 and all("Ana Pérez" in r for r in by_contact)
    last_week = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    assert "Nothing recorded" in rows(admin.get(AUDIT, {"from": last_week, "to": last_week}))[0]

    for bad, field in (({"kind": "nonsense"}, "kind"), ({"actor": "x"}, "actor"), ({"conversation": "-1"},
                                                                                  "conversation")):
        response = admin.get(AUDIT, bad)
        assert response.status_code == 400 and field in response.content.decode()


def test_a_supervisor_sees_only_her_campaigns(customer_says: Callable[..., Conversation],
                                              demo: dict[str, Any]) -> None:
    sales = customer_says("hola", phone="+5491155557011")
    support = customer_says("hola", phone="+5491155557012", line=demo["support_line"])
    boss = get_user_model().objects.create_user("support_boss", password="x")
    AgentProfile.objects.update_or_create(user=boss, defaults={"role": AgentProfile.Role.SUPERVISOR})
    Campaign.objects.get(name="Support").supervisors.add(boss)

    seen = rows(client_for("support_boss").get(AUDIT))
    assert any(f"#{support.pk}<" in r for r in seen)
    assert not any(f"#{sales.pk}<" in r for r in seen)
    assert "Nothing recorded" in rows(client_for("support_boss").get(AUDIT, {"conversation": sales.pk}))[0]
    assert any(f"#{sales.pk}<" in r for r in rows(client_for("supervisor").get(AUDIT)))
    assert client_for("agent1").get(AUDIT).status_code == 403
    assert Client().get(AUDIT).status_code == 302  # to the login page
