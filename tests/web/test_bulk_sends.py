"""A bulk send in a real browser (issue 12): a supervisor previews a send to her campaign's contact
database, starts it, and watches its progress bar and counters move live (no reload) until done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from conversa.contacts.models import Contact
from conversa.outreach.models import BulkRecipient, BulkSend
from conversa.whatsapp.models import MessageTemplate

RECIPIENTS = 240


def test_a_bulk_sends_progress_moves_live_until_done(agent_page: Callable[..., Page], demo: dict[str, Any],
                                                     screenshot_dir: Path) -> None:
    line = demo["sales_line"]
    database = line.campaign.contact_database
    Contact.objects.bulk_create(Contact(database=database, phone=f"+54911{60000000 + n:08d}", first_name=f"Ana{n}")
                                for n in range(RECIPIENTS))
    total = Contact.objects.filter(database=database).exclude(phone="").count()
    template = MessageTemplate.objects.get(line=line, name="follow_up")

    page = agent_page("supervisor")
    page.goto("/supervisor/bulk/")
    page.get_by_role("link", name="New bulk send").click()
    page.fill("input[name=name]", "Spring <promo>")
    page.select_option("select[name=line]", str(line.pk))
    page.select_option("select[name=template]", str(template.pk))
    page.fill("textarea[name=params]", "{first_name}")
    page.fill("input[name=rate]", "60")  # ~4 s for the whole list: slow enough to watch
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text(f"{total} messages will be sent")
    expect(preview).to_contain_text("Hi Ana0, are you still interested in our offer?")
    page.evaluate("window.__samePage = true")  # gone if anything reloads the page
    page.get_by_role("button", name="Start sending").click()

    expect(page.get_by_role("heading", name="Spring <promo>")).to_be_visible()
    page.evaluate("window.__samePage = true")
    progress = page.locator("#bulk-progress")
    done = progress.locator(".bulk-done")
    # Seen part-way (neither nothing nor everything), then complete: updated in place.
    page.wait_for_function("(total) => { const n = +document.querySelector('#bulk-progress .bulk-done').textContent;"
                           " return n > 0 && n < total; }", arg=total, timeout=15_000)
    page.screenshot(path=str(screenshot_dir / "bulk-send.png"))
    expect(done).to_have_text(str(total), timeout=30_000)
    expect(progress).to_have_attribute("data-status", "done")
    expect(progress.locator('[data-kpi="sent"]')).to_have_text(str(total))
    # The recipients' rows follow too (refreshed in place while the job ran).
    expect(page.locator("#bulk-recipients tbody tr[data-status=sent]")).to_have_count(100)
    assert page.evaluate("window.__samePage") is True
    job = BulkSend.objects.get(name="Spring <promo>")
    assert job.recipients.filter(status=BulkRecipient.Status.SENT).count() == total
    assert page.js_errors == []  # type: ignore[attr-defined]
