"""Back-office pages and the console's non-browser edges (no Chromium needed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conversa.accounts.models import AgentGroup
from conversa.campaigns.models import Campaign
from conversa.whatsapp.models import Line, Provider


def logged_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.mark.parametrize("path", [
    "/admin/accounts/agentgroup/", "/admin/accounts/agentgroup/add/", "/admin/accounts/agentprofile/",
    "/admin/auth/user/", "/admin/auth/user/add/", "/admin/contacts/contactdatabase/",
    "/admin/contacts/contactdatabase/add/", "/admin/contacts/contact/", "/admin/campaigns/campaign/",
    "/admin/campaigns/campaign/add/", "/admin/campaigns/dispositionoption/", "/admin/campaigns/quickreply/",
    "/admin/campaigns/disposition/", "/admin/campaigns/timegroup/", "/admin/campaigns/timegroup/add/",
    "/admin/whatsapp/interactivemenu/", "/admin/whatsapp/interactivemenu/add/",
    "/admin/inbox/conversation/", "/admin/inbox/auditentry/",
])
def test_admin_pages_render(demo: dict[str, Any], path: str) -> None:
    assert logged_in("admin").get(path).status_code == 200


def test_admin_agent_group_whatsapp_checkbox(demo: dict[str, Any]) -> None:
    response = logged_in("admin").post("/admin/accounts/agentgroup/add/",
                                       {"name": "Night shift", "whatsapp": "on", "skills": '["voice"]'})
    assert response.status_code == 302, response.content
    assert AgentGroup.objects.get(name="Night shift").skills == ["whatsapp", "voice"]


def test_admin_rejects_bad_custom_fields(demo: dict[str, Any]) -> None:
    # The custom fields are rows of a form (contacts.forms); a problem names the row and the field.
    response = logged_in("admin").post("/admin/contacts/contactdatabase/add/",
                                       {"name": "Bad", "fields-count": "1", "fields-0-name": "x",
                                        "fields-0-type": "colour"})
    assert response.status_code == 200
    assert b"Row 1 (x): the type must be one of" in response.content


def test_console_requires_login(demo: dict[str, Any]) -> None:
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_agent_without_skill_sees_why(demo: dict[str, Any]) -> None:
    response = logged_in("agent4").get("/")
    assert response.status_code == 200
    assert b"does not have the WhatsApp skill" in response.content


def test_simulator_only_serves_sandbox_lines(demo: dict[str, Any]) -> None:
    meta = Provider.objects.create(name="Meta", kind=Provider.Kind.META)
    campaign = Campaign.objects.create(name="Other", contact_database=Campaign.objects.first().contact_database)
    line = Line.objects.create(name="Real", number="+15550100009", provider=meta, campaign=campaign)
    client = Client()
    page = client.get("/sandbox/")
    assert page.status_code == 200 and b"+15550100001" in page.content and b"+15550100009" not in page.content
    assert client.get(f"/sandbox/{line.pk}/messages/?phone=%2B5491155550001").status_code == 404
    ok = client.get(f"/sandbox/{demo['sales_line'].pk}/messages/?phone=%2B5491155550001")
    assert ok.status_code == 200 and ok.json()["messages"] == []


def test_simulator_can_be_turned_off(demo: dict[str, Any], settings: Any) -> None:
    settings.CONVERSA_SANDBOX_SIMULATOR = False
    client = Client()
    assert client.get("/sandbox/").status_code == 404
    assert client.get(f"/sandbox/{demo['sales_line'].pk}/messages/?phone=%2B5491155550001").status_code == 404


def test_capture_conflict_comes_back_as_an_htmx_error(demo: dict[str, Any], customer_says: Any) -> None:
    conversation = customer_says("Hola")
    assert logged_in("agent1").post(f"/console/c/{conversation.pk}/capture/").status_code == 204
    response = logged_in("agent2").post(f"/console/c/{conversation.pk}/capture/")
    assert response.status_code == 409
    assert "Already taken by Laura G" in response["HX-Trigger"]


def test_agent_is_warned_when_the_provider_rejects_the_line(demo: dict[str, Any], customer_says: Any) -> None:
    conversation = customer_says("Hola <b>")
    agent = logged_in("agent1")
    assert agent.post(f"/console/c/{conversation.pk}/capture/").status_code == 204
    assert b'data-testid="line-problem"' not in agent.get(f"/console/c/{conversation.pk}/").content
    Line.objects.filter(pk=demo["sales_line"].pk).update(health_error="Access token expired <x>")
    page = agent.get(f"/console/c/{conversation.pk}/").content.decode()
    assert 'data-testid="line-problem"' in page and "Access token expired &lt;x&gt;" in page


def test_admin_change_pages_of_menus_hours_and_lines(demo: dict[str, Any]) -> None:
    from conversa.campaigns.models import TimeGroup
    from conversa.whatsapp.models import InteractiveMenu

    admin = logged_in("admin")
    for path in (f"/admin/campaigns/timegroup/{TimeGroup.objects.get().pk}/change/",
                 f"/admin/whatsapp/interactivemenu/{InteractiveMenu.objects.get().pk}/change/",
                 f"/admin/whatsapp/line/{demo['sales_line'].pk}/change/"):
        page = admin.get(path)
        assert page.status_code == 200, path
    assert b"Opening hours" in admin.get(
        f"/admin/whatsapp/interactivemenu/{InteractiveMenu.objects.get().pk}/change/").content
