"""The back office in a real browser: the setup checklist on the admin home (a screenshot of it for
the user guide) and disposition options edited as forms, also in a campaign's "Add another" row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from conversa.campaigns.models import Campaign, DispositionOption
from conversa.contacts.models import ContactDatabase
from conversa.whatsapp.models import Line


def admin_page(new_context: Callable[..., BrowserContext]) -> Page:
    page = new_context().new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "demo")
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator("#setup-checklist")).to_be_visible()
    return page


def test_the_setup_checklist_says_what_is_missing_and_links_to_each_form(
        new_context: Callable[..., BrowserContext], demo: dict[str, Any], server_url: str,
        screenshot_dir: Path) -> None:
    Campaign.objects.get(name="Support").agents.clear()  # one step left to do
    page = admin_page(new_context)
    steps = page.locator(".setup-step")
    expect(steps).to_have_count(6)
    expect(page.locator(".setup-step.todo")).to_have_count(1)
    agents = page.locator('[data-step="agents"]')
    expect(agents).to_contain_text("Campaign Support has no agent with the WhatsApp skill")
    line: Line = demo["sales_line"]
    # The webhook URL is on the address the browser uses (the test server's port), not 127.0.0.1:8000.
    expect(page.locator('[data-step="line"]')).to_contain_text(f"{server_url}/webhooks/sandbox/{line.pk}/")
    page.screenshot(path=str(screenshot_dir / "admin-checklist.png"))

    page.locator('[data-step-link="time_group"]').click()
    expect(page).to_have_url(f"{server_url}/admin/campaigns/timegroup/")
    page.go_back()
    page.locator('[data-step-link="agents"]').click()
    expect(page).to_have_url(f"{server_url}/admin/auth/user/")


def test_disposition_forms_are_edited_as_forms(new_context: Callable[..., BrowserContext],
                                               demo: dict[str, Any]) -> None:
    page = admin_page(new_context)
    option = DispositionOption.objects.get(name="Quote sent")
    page.goto(f"/admin/campaigns/dispositionoption/{option.pk}/change/")
    expect(page.locator('input[name="form_fields-0-name"]')).to_have_value("amount")
    page.fill('input[name="form_fields-2-name"]', "delivery")
    page.fill('input[name="form_fields-2-label"]', "Delivery date")
    page.select_option('select[name="form_fields-2-type"]', "date")
    page.check('input[name="form_fields-2-required"]')
    page.fill('textarea[name="sub_options"]', "Price\nTiming")
    page.click('input[name="_save"]')
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    option.refresh_from_db()
    assert option.form_fields[-1] == {"name": "delivery", "label": "Delivery date", "type": "date",
                                      "required": True}
    assert option.sub_options == ["Price", "Timing"]

    # A new option added on the campaign's page, in the row "Add another" makes.
    support = Campaign.objects.get(name="Support")
    page.goto(f"/admin/campaigns/campaign/{support.pk}/change/")
    page.locator(".add-row a").click()
    row = page.locator(".dynamic-disposition_options").last
    row.locator('input[name$="-name"]').first.fill("Refund issued")
    row.locator('select[name$="-kind"]').select_option("management")
    row.locator('input[name$="form_fields-0-name"]').fill("amount")
    row.locator('select[name$="form_fields-0-type"]').select_option("number")
    row.locator('textarea[name$="-sub_options"]').fill("Full\nPartial")
    page.click('input[name="_save"]')
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    added = DispositionOption.objects.get(campaign=support, name="Refund issued")
    assert added.kind == "management" and added.sub_options == ["Full", "Partial"]
    assert added.form_fields == [{"name": "amount", "label": "amount", "type": "number", "required": False}]


def test_a_contact_databases_custom_columns_are_edited_as_a_form(new_context: Callable[..., BrowserContext],
                                                                 demo: dict[str, Any]) -> None:
    page = admin_page(new_context)
    database = ContactDatabase.objects.get(name="Support contacts")
    page.goto(f"/admin/contacts/contactdatabase/{database.pk}/change/")
    expect(page.locator('input[name="fields-1-name"]')).to_have_value("plan")
    expect(page.locator('input[name="fields-1-choices"]')).to_have_value("basic, pro, enterprise")
    # A choice column without choices is refused, naming the row and the field; nothing is saved.
    page.fill('input[name="fields-2-name"]', "segment")
    page.fill('input[name="fields-2-label"]', "Segment")
    page.select_option('select[name="fields-2-type"]', "choice")
    page.click('input[name="_save"]')
    expect(page.locator(".errorlist")).to_contain_text("Row 3 (segment)")
    database.refresh_from_db()
    assert [f["name"] for f in database.fields] == ["customer_number", "plan"]
    # With its choices, saved as shown; the first column removed.
    page.fill('input[name="fields-2-choices"]', "retail, corporate")
    page.check('input[name="fields-2-required"]')
    page.check('input[name="fields-0-delete"]')
    page.click('input[name="_save"]')
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    database.refresh_from_db()
    assert [f["name"] for f in database.fields] == ["plan", "segment"]
    assert database.fields[1] == {"name": "segment", "label": "Segment", "type": "choice", "required": True,
                                  "choices": ["retail", "corporate"]}
