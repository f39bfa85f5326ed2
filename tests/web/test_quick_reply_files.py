"""Quick replies with a file (issue 11, the composer): the admin attaches one (checked by its
content), the agent puts the reply in the composer, edits the text and Enter sends the file with
the text as its caption — once, through the provider."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect
from tests.inbox.relay import Relay
from tests.web.test_agent_day_bugs import capture
from tests.web.test_back_office import admin_page
from tests.web.test_console import customer_writes, relay  # noqa: F401 (the relay fixture)

from conversa.campaigns.models import QuickReply
from conversa.inbox.models import Message

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_a_quick_reply_with_a_file_is_sent_with_the_edited_text_as_caption(
    new_context: Callable[..., BrowserContext], agent_page: Callable[..., Page], demo: dict[str, Any],
    server_url: str, relay: Relay, tmp_path: Path,  # noqa: F811
) -> None:
    price_list = QuickReply.objects.get(title="Price list")
    admin = admin_page(new_context)
    admin.goto(f"/admin/campaigns/quickreply/{price_list.pk}/change/")
    # Not a file WhatsApp takes (a program, whatever its name says): refused, nothing stored.
    program = tmp_path / "prices.pdf.exe"
    program.write_bytes(b"MZ\x90\x00" + b"\x00" * 200)
    admin.set_input_files("input[name=attachment]", str(program))
    admin.click('input[name="_save"]')
    expect(admin.locator(".errorlist")).to_contain_text("WhatsApp does not accept this type of file.")
    price_list.refresh_from_db()
    assert not price_list.attachment
    document = tmp_path / "prices.pdf"
    document.write_bytes(PDF)
    admin.set_input_files("input[name=attachment]", str(document))
    admin.click('input[name="_save"]')
    expect(admin.locator(".messagelist")).to_contain_text("was changed successfully")

    customer_writes(server_url, demo["sales_line"].pk, "Hola", phone="+5491155550261", name="Celia Ramos")
    laura = agent_page("agent1")
    capture(laura, "Celia Ramos")
    laura.get_by_role("button", name="Quick replies").click()
    expect(laura.locator("#dlg-quick")).to_contain_text("File: prices.pdf")
    laura.locator("#dlg-quick").get_by_role("button", name=re.compile("Price list")).click()
    composer = laura.locator("[data-testid=composer-text]")
    expect(composer).to_have_value("Hi Celia, here is our price list: https://example.com/prices")
    expect(laura.locator("[data-attachment]")).to_be_visible()
    expect(laura.locator("[data-attachment-name]")).to_have_text("prices.pdf")
    composer.press("End")
    composer.type(" Saludos.")
    composer.press("Enter")

    caption = "Hi Celia, here is our price list: https://example.com/prices Saludos."
    expect(laura.locator(".msg-out", has_text="Saludos.")).to_be_visible()
    expect(laura.locator("[data-attachment]")).to_be_hidden()
    sent = Message.objects.get(conversation__customer_phone="+5491155550261", direction=Message.Direction.OUTBOUND)
    assert (sent.kind, sent.body, sent.payload.get("quick_reply")) == ("document", caption, price_list.pk)
    expect(laura.locator(".msg-out", has_text="Saludos.").locator(
        ".ticks-sent, .ticks-delivered, .ticks-read")).to_be_visible()  # the provider answered
    documents = [r for r in relay.received if r.get("type") == "document"]
    assert [(r["filename"], r["caption"]) for r in documents] == [("prices.pdf", caption)]
    assert laura.js_errors == []  # type: ignore[attr-defined]
