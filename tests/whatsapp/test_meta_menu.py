"""The interactive menu over Meta: sent as a WhatsApp list message, answered with a list_reply."""

from __future__ import annotations

import json

from conftest import drain_tasks
from conversa.campaigns.models import Campaign
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import InteractiveMenu, Line, MenuOption
from fakes.meta import MetaFake

from .conftest import META_PHONE_NUMBER_ID, meta_payload, post_meta
from .test_meta_sending import SEND_PATH


def test_menu_goes_out_as_a_list_and_a_list_reply_routes(meta_fake: MetaFake, meta_line: Line) -> None:
    menu = InteractiveMenu.objects.create(name="Main", header="ACME", body="How can we help?", button="Options",
                                          footer="Reply with a choice")
    MenuOption.objects.create(menu=menu, order=1, title="Sales", description="Plans and prices",
                              campaign=Campaign.objects.get(name="Sales"))
    support = MenuOption.objects.create(menu=menu, order=2, title="Support",
                                        campaign=Campaign.objects.get(name="Support"))
    meta_line.menu = menu
    meta_line.save()

    assert post_meta(meta_line, meta_payload("messages_text")).status_code == 200
    drain_tasks()
    conversation = Conversation.objects.get(line=meta_line)
    assert conversation.status == "menu"
    sends = [r.json() for r in meta_fake.requests_to("POST", SEND_PATH)]
    assert len(sends) == 1
    interactive = sends[0]["interactive"]
    assert sends[0]["type"] == "interactive" and sends[0]["to"] == "5491155550001"
    assert interactive["type"] == "list"
    assert interactive["header"] == {"type": "text", "text": "ACME"}
    assert interactive["body"] == {"text": "How can we help?"}
    assert interactive["footer"] == {"text": "Reply with a choice"}
    assert interactive["action"]["button"] == "Options"
    rows = interactive["action"]["sections"][0]["rows"]
    assert [(r["title"], r.get("description")) for r in rows] == [("Sales", "Plans and prices"), ("Support", None)]

    # The customer taps "Support" in the list: Meta sends a list_reply carrying the row id.
    reply = json.loads(meta_payload("messages_interactive_list_reply"))
    chosen = reply["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"]
    chosen.update(id=rows[1]["id"], title="Support")
    reply["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = META_PHONE_NUMBER_ID
    assert post_meta(meta_line, json.dumps(reply).encode()).status_code == 200
    drain_tasks()
    conversation.refresh_from_db()
    assert conversation.status == "new" and conversation.campaign_id == support.campaign_id

