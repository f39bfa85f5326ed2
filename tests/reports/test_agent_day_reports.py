"""Issue 11 bug 10: the reports name the identified contact, credit every agent of a transferred
conversation, and the CSV carries the disposition's notes, form answers and follow-up, with phones
left as they are."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient
from tests.reports.conftest import ok, option
from tests.reports.test_pages import csv_rows, login

from conversa.inbox.models import Conversation
from conversa.reports.exports import safe_cell
from conversa.reports.selectors import parse_range, reportable_campaigns, summary


def test_csv_names_the_contact_and_carries_the_disposition(
    api: Callable[[str], APIClient], customer_says: Callable[..., Conversation], demo: dict[str, Any],
) -> None:
    agent1 = api("agent1")
    c = customer_says("Hola", phone="+5491155550301", name="Profile Name")
    ok(agent1.post(f"/api/v1/conversations/{c.pk}/capture/"))
    ok(agent1.post(f"/api/v1/conversations/{c.pk}/identify/", {"first_name": "Ana", "last_name": "López"},
                   format="json"))
    ok(agent1.post(f"/api/v1/conversations/{c.pk}/close/", {
        "disposition": option("Sales", "Quote sent").pk, "notes": "Wants the yearly plan",
        "form": {"amount": 240, "product": "Plan Pro"}}, format="json"))
    d = customer_says("Hola", phone="+5491155550302", name="Other")
    ok(agent1.post(f"/api/v1/conversations/{d.pk}/capture/"))
    follow_up = timezone.now() + datetime.timedelta(days=2)
    ok(agent1.post(f"/api/v1/conversations/{d.pk}/close/", {
        "disposition": option("Sales", "Interested, call back").pk,
        "follow_up_at": follow_up.isoformat()}, format="json"))

    rows = csv_rows(login("supervisor").get("/supervisor/reports/conversations.csv"))
    header = rows[0]
    by_id = {int(r[0]): dict(zip(header, r, strict=True)) for r in rows[1:]}
    quoted, called = by_id[c.pk], by_id[d.pk]
    assert quoted["Customer"] == "Ana López"  # the identified contact, not the WhatsApp profile
    assert called["Customer"] == "Other"  # never identified: the profile name
    assert quoted["Phone"] == "+5491155550301"  # a phone is not a formula: no quote in front
    assert quoted["Notes"] == "Wants the yearly plan"
    assert quoted["Form answers"] == "Amount: 240; Product: Plan Pro"
    assert called["Follow-up"] == timezone.localtime(follow_up).strftime("%Y-%m-%d %H:%M:%S")
    html = login("supervisor").get("/supervisor/reports/").content.decode()
    assert "Ana López" in html


def test_a_transferred_conversation_counts_for_each_agent(
    api: Callable[[str], APIClient], customer_says: Callable[..., Conversation], demo: dict[str, Any],
) -> None:
    c = customer_says("Hola", phone="+5491155550303")
    ok(api("agent1").post(f"/api/v1/conversations/{c.pk}/capture/"))
    ok(api("agent1").post(f"/api/v1/conversations/{c.pk}/messages/", {"text": "Hi"}, format="json"), 201)
    martin = User.objects.get(username="agent2")
    ok(api("agent1").post(f"/api/v1/conversations/{c.pk}/transfer/", {"agent": martin.pk}, format="json"))
    ok(api("agent2").post(f"/api/v1/conversations/{c.pk}/messages/", {"text": "Hello"}, format="json"), 201)
    ok(api("agent2").post(f"/api/v1/conversations/{c.pk}/close/", {"disposition": option("Sales", "Sale").pk},
                          format="json"))

    supervisor = User.objects.get(username="supervisor")
    sales = next(s for s in summary(reportable_campaigns(supervisor), parse_range(None, None)) if s.name == "Sales")
    figures = {a.name: a for a in sales.agents}
    assert (figures["Laura Gómez"].conversations, figures["Laura Gómez"].closed,
            figures["Laura Gómez"].messages_sent) == (1, 0, 1)
    assert (figures["Martín Pérez"].conversations, figures["Martín Pérez"].closed,
            figures["Martín Pérez"].messages_sent) == (1, 1, 1)
    assert sales.conversations == 1


def test_only_cells_that_start_a_formula_are_escaped() -> None:
    for plain in ("+5491155550001", "-2", "-2.5", "1500", "Ana"):
        assert safe_cell(plain) == plain
    for dangerous in ("=1+1", "+1+1", "-2+3", "@SUM(A1)", "+cmd|' /C calc'!A0", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
