"""A known day of work, built through the real API, with deterministic timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from conversa.campaigns.models import DispositionOption
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import MessageTemplate


def option(campaign: str, name: str) -> DispositionOption:
    return DispositionOption.objects.get(campaign__name=campaign, name=name)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def set_times(conversation: Conversation, t0: datetime, *, attended: int | None = None,
              first_reply: int | None = None, closed: int | None = None) -> None:
    """created_at = t0; attended/closed/first agent reply at t0 + the given seconds. Customer
    messages at t0; other agent messages after the first reply; system messages at the close."""
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=t0, last_message_at=t0,
        attended_at=t0 + timedelta(seconds=attended) if attended is not None else None,
        closed_at=t0 + timedelta(seconds=closed) if closed is not None else None)
    messages = Message.objects.filter(conversation=conversation)
    messages.filter(direction=Message.Direction.INBOUND).update(created_at=t0)
    messages.filter(direction=Message.Direction.OUTBOUND, sender__isnull=True).update(
        created_at=t0 + timedelta(seconds=closed or 0))
    agent_messages = list(messages.filter(direction=Message.Direction.OUTBOUND, sender__isnull=False)
                          .order_by("id"))
    for n, message in enumerate(agent_messages):
        Message.objects.filter(pk=message.pk).update(
            created_at=t0 + timedelta(seconds=(first_reply or 0) + n))
    # The first agent message's time is stored on the conversation too (set when it was sent).
    Conversation.objects.filter(pk=conversation.pk).update(
        first_response_at=t0 + timedelta(seconds=first_reply or 0) if agent_messages else None)


@pytest.fixture
def scenario(api: Callable[[str], APIClient], customer_says: Callable[..., Conversation],
             demo: dict[str, Any]) -> dict[str, Any]:
    agent1, agent2, agent3 = api("agent1"), api("agent2"), api("agent3")
    t0 = timezone.now() - timedelta(hours=3)

    # c1: two customer messages; agent1 captures, answers once, closes with "Sale".
    c1 = customer_says("Hola", phone="+5491155550001")
    customer_says("¿Precio?", phone="+5491155550001")
    ok(agent1.post(f"/api/v1/conversations/{c1.pk}/capture/"))
    ok(agent1.post(f"/api/v1/conversations/{c1.pk}/messages/", {"text": "Hi!"}, format="json"), 201)
    ok(agent1.post(f"/api/v1/conversations/{c1.pk}/close/", {"disposition": option("Sales", "Sale").pk},
                   format="json"))

    # c2: agent2 answers twice, closes with "Not interested".
    c2 = customer_says("Info please", phone="+5491155550002", name="Bruno")
    ok(agent2.post(f"/api/v1/conversations/{c2.pk}/capture/"))
    for text in ("Hello", "Anything else?"):
        ok(agent2.post(f"/api/v1/conversations/{c2.pk}/messages/", {"text": text}, format="json"), 201)
    ok(agent2.post(f"/api/v1/conversations/{c2.pk}/close/",
                   {"disposition": option("Sales", "Not interested").pk}, format="json"))

    # c3: nobody takes it; the customer's profile name is a spreadsheet formula and markup.
    c3 = customer_says("=HYPERLINK(\"http://evil\")", phone="+5491155550003",
                       name="=cmd|' /C calc'!A0 <script>alert(1)</script>")

    # c4: Support, agent3 answers and closes "Solved".
    c4 = customer_says("Broken", phone="+5491155550004", line=demo["support_line"])
    ok(agent3.post(f"/api/v1/conversations/{c4.pk}/capture/"))
    ok(agent3.post(f"/api/v1/conversations/{c4.pk}/messages/", {"text": "On it"}, format="json"), 201)
    ok(agent3.post(f"/api/v1/conversations/{c4.pk}/close/", {"disposition": option("Support", "Solved").pk},
                   format="json"))

    # c5: agent1 starts an outbound conversation with a template.
    template = MessageTemplate.objects.get(line=demo["sales_line"], name="order_update")
    body = ok(agent1.post("/api/v1/conversations/", {"line": demo["sales_line"].pk, "phone": "+5491155550005",
                                                     "template": template.pk, "params": ["Eva", "A-1"]},
                          format="json"), 201)
    c5 = Conversation.objects.get(pk=body["id"])

    set_times(c1, t0, attended=60, first_reply=120, closed=600)
    set_times(c2, t0 + timedelta(minutes=10), attended=100, first_reply=300, closed=900)
    set_times(c3, t0 + timedelta(minutes=20))
    set_times(c4, t0 + timedelta(minutes=30), attended=30, first_reply=40, closed=50)
    set_times(c5, t0 + timedelta(minutes=40), attended=0, first_reply=0)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "t0": t0}


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres_only") and connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")
