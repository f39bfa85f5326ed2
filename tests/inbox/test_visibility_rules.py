"""Who may open which conversation is written twice, on purpose (decisions #64): as a query for
lists (`visible_conversations`) and as a check of one row for a single read
(`get_visible_conversation`, which costs her own conversation no campaign query). Here both are
asked about every conversation of a mixed floor, for every kind of user, and must agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from conversa.campaigns.models import Campaign
from conversa.core.errors import NotAllowed, NotFound
from conversa.inbox.actions.notes import add_note
from conversa.inbox.models import Conversation
from conversa.inbox.selectors import get_visible_conversation, visible_conversations

USERS = ["admin", "supervisor", "agent1", "agent2", "agent3", "agent4"]


def opens_one_by_one(user: Any, conversation: Conversation) -> bool:
    try:
        get_visible_conversation(user, conversation.pk, with_related=False)
    except (NotFound, NotAllowed):
        return False
    return True


def test_the_list_and_the_single_read_agree_for_every_user_and_conversation(
        demo: dict[str, Any], customer_says: Callable[..., Conversation]) -> None:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=USERS)}
    sales, support = Campaign.objects.get(name="Sales"), Campaign.objects.get(name="Support")
    waiting_sales = customer_says("hola", phone="+5491155550101")
    waiting_support = customer_says("hola", phone="+5491155550102", line=demo["support_line"])
    held_by_agent1 = customer_says("hola", phone="+5491155550103")
    closed_by_agent1 = customer_says("hola", phone="+5491155550104")
    held_by_agent2 = customer_says("hola", phone="+5491155550105")
    mentions_agent1 = customer_says("hola", phone="+5491155550106")
    mentions_agent1_elsewhere = customer_says("hola", phone="+5491155550107", line=demo["support_line"])
    Conversation.objects.filter(pk=held_by_agent1.pk).update(agent=users["agent1"], status="open")
    Conversation.objects.filter(pk=closed_by_agent1.pk).update(agent=users["agent1"], status="closed")
    Conversation.objects.filter(pk__in=[held_by_agent2.pk, mentions_agent1.pk]).update(
        agent=users["agent2"], status="open")
    Conversation.objects.filter(pk=mentions_agent1_elsewhere.pk).update(
        agent=users["agent3"], status="open", campaign=support)
    Conversation.objects.filter(pk=waiting_support.pk).update(campaign=support)
    add_note(conversation_id=mentions_agent1.pk, author=users["agent2"], body="@agent1 can you look?")
    add_note(conversation_id=mentions_agent1_elsewhere.pk, author=users["agent3"], body="@agent1 and here?")
    assert sales.agents.filter(username="agent1").exists() and not support.agents.filter(username="agent1").exists()

    everything = list(Conversation.objects.order_by("pk"))
    for username, user in users.items():
        listed = set(visible_conversations(user).values_list("pk", flat=True))
        one_by_one = {c.pk for c in everything if opens_one_by_one(user, c)}
        assert listed == one_by_one, username

    # And the rules themselves, so that agreeing on nothing cannot pass.
    agent1 = set(visible_conversations(users["agent1"]).values_list("pk", flat=True))
    assert agent1 == {waiting_sales.pk, held_by_agent1.pk, closed_by_agent1.pk, mentions_agent1.pk}
    assert set(visible_conversations(users["agent4"]).values_list("pk", flat=True)) == set()  # no WhatsApp skill
    assert set(visible_conversations(users["supervisor"]).values_list("pk", flat=True)) == {c.pk for c in everything}
    assert set(visible_conversations(users["agent3"]).values_list("pk", flat=True)) == {
        waiting_sales.pk, waiting_support.pk, mentions_agent1_elsewhere.pk}
    assert len(set(visible_conversations(users["admin"]).values_list("pk", flat=True))) == len(everything)
