"""The admin home's setup checklist: each step done or saying what is missing, linking to its form,
and the lines' webhook URLs on the host the administrator browses."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from conversa.campaigns.models import Campaign, DispositionOption
from conversa.whatsapp.models import Line


def steps(html: str) -> dict[str, str]:
    """Each step's markup (up to the next step, or the list's end) by its key, starting with its
    state class ("done" or "todo")."""
    found = {}
    for chunk in html.split('class="setup-step ')[1:]:
        key = chunk.split('data-step="')[1].split('"')[0]
        found[key] = chunk.split("</ol>")[0]
    return found


def test_a_fresh_install_lists_every_step_to_do_with_its_form() -> None:
    admin = get_user_model().objects.create_superuser("root", password="x")
    client = Client()
    client.force_login(admin)
    html = client.get("/admin/").content.decode()
    found = steps(html)
    assert list(found) == ["provider", "line", "time_group", "contact_database", "campaign", "agents"]
    assert all(s.startswith("todo") for s in found.values())
    assert "6 steps to go" in html
    assert 'href="/admin/whatsapp/provider/add/"' in found["provider"] and "No provider yet" in found["provider"]
    assert 'href="/admin/whatsapp/line/add/"' in found["line"]
    assert 'href="/admin/campaigns/timegroup/add/"' in found["time_group"]
    assert 'href="/admin/contacts/contactdatabase/add/"' in found["contact_database"]
    assert 'href="/admin/campaigns/campaign/add/"' in found["campaign"]
    assert 'href="/admin/auth/user/add/"' in found["agents"]
    for step in found.values():  # every link opens a form that exists
        url = step.split("data-step-link")[0].rsplit('href="', 1)[1].split('"')[0]
        assert client.get(url).status_code == 200, url


def test_the_demo_is_set_up_and_shows_webhook_urls_on_the_browsed_host(
        admin_client: Client, demo: dict[str, Any], settings: Any) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "conversa.example.com"]
    line: Line = demo["sales_line"]
    html = admin_client.get("/admin/", HTTP_HOST="conversa.example.com", secure=True).content.decode()
    found = steps(html)
    assert all(s.startswith("done") for s in found.values()), {k: v[:400] for k, v in found.items()}
    assert "all done" in html
    assert f"https://conversa.example.com/webhooks/sandbox/{line.pk}/" in found["line"]
    assert "127.0.0.1:8000" not in html
    page = admin_client.get(f"/admin/whatsapp/line/{line.pk}/change/", HTTP_HOST="conversa.example.com",
                            secure=True).content.decode()
    assert f"https://conversa.example.com/webhooks/sandbox/{line.pk}/" in page

    # What is missing is said, step by step.
    DispositionOption.objects.filter(campaign__name="Support").update(active=False)
    Campaign.objects.get(name="Support").agents.clear()
    found = steps(admin_client.get("/admin/").content.decode())
    assert found["campaign"].startswith("todo") and "Campaign Support has no disposition options" in found["campaign"]
    assert found["agents"].startswith("todo") and "Campaign Support has no agent" in found["agents"]
    assert found["provider"].startswith("done")


def test_staff_who_are_not_admins_do_not_see_it(demo: dict[str, Any]) -> None:
    staff = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert 'id="setup-checklist"' not in client.get("/admin/").content.decode()
