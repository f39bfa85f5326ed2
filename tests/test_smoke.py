from __future__ import annotations

from conftest import results


def test_customer_message_reaches_general_inbox(api, customer_says):
    conversation = customer_says("Hola")
    items = results(api("agent1").get("/api/v1/inbox/general/"))
    assert [c["id"] for c in items] == [conversation.pk]
    assert items[0]["customer_name"] == "Ana"
