"""Expired conversations: the sweep marks those whose 24-hour window closed unanswered (or whose
template got no answer), the lists and reports show them, an approved template (the agent's, or a
supervisor's in the general inbox) or the customer brings them back, housekeeping closes them."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign
from conversa.core.worker import sweep
from conversa.inbox.actions.expiry import EXPIRY_BATCH, expire_unanswered
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.realtime.models import StreamEvent
from conversa.whatsapp.models import MessageTemplate

HOURS_25 = datetime.timedelta(hours=25)


def age(conversation: Conversation, by: datetime.timedelta = HOURS_25) -> None:
    """Move the whole conversation (and its messages) back in time."""
    c = Conversation.objects.get(pk=conversation.pk)
    Conversation.objects.filter(pk=c.pk).update(
        created_at=c.created_at - by, last_message_at=c.last_message_at and c.last_message_at - by,
        last_inbound_at=c.last_inbound_at and c.last_inbound_at - by)
    for message in Message.objects.filter(conversation=c):
        Message.objects.filter(pk=message.pk).update(created_at=message.created_at - by)


def send(api: Callable[[str], Any], conversation: Conversation, payload: dict[str, Any], user: str = "agent1") -> Any:
    return api(user).post(f"/api/v1/conversations/{conversation.pk}/messages/", payload, format="json")


def follow_up() -> dict[str, Any]:
    return {"template": MessageTemplate.objects.get(name="follow_up").pk, "params": ["Ana"]}


def test_an_unanswered_conversation_expires_and_is_shown_so(api: Any, customer_says: Callable[..., Conversation],
                                                            run_tasks: Callable[[], None]) -> None:
    unanswered = customer_says("hola", phone="+5491155556001")
    answered = customer_says("hola", phone="+5491155556002")
    fresh = customer_says("hola", phone="+5491155556003")
    assert api("agent1").post(f"/api/v1/conversations/{unanswered.pk}/capture/").status_code == 200
    assert api("agent1").post(f"/api/v1/conversations/{answered.pk}/capture/").status_code == 200
    assert send(api, answered, {"text": "¿En qué te ayudo?"}).status_code == 201
    run_tasks()
    for conversation in (unanswered, answered):
        age(conversation)

    assert sweep()["expiry"] == 1  # registered with the worker's sweep
    assert Conversation.objects.get(pk=unanswered.pk).expired
    assert not Conversation.objects.get(pk=answered.pk).expired  # the agent answered: not an expiry
    assert not Conversation.objects.get(pk=fresh.pk).expired
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.EXPIRED)
    assert (entry.conversation_id, entry.data["reason"]) == (unanswered.pk, "unanswered")
    assert StreamEvent.objects.filter(type="conversation.expired").count() == 1
    assert expire_unanswered() == 0  # once

    mine = {row["id"]: row for row in api("agent1").get("/api/v1/inbox/personal/").json()["results"]}
    assert mine[unanswered.pk]["expired"] and not mine[answered.pk]["expired"]
    browser = Client()
    browser.force_login(get_user_model().objects.get(username="agent1"))
    page = browser.get("/console/lists/").content.decode()
    row = page.split(f'id="row-mine-{unanswered.pk}"')[1].split("</li>")[0]
    assert 'class="row-expired"' in row
    other = page.split(f'id="row-mine-{answered.pk}"')[1].split("</li>")[0]
    assert 'class="row-expired"' not in other


def test_an_outbound_template_without_answer_expires(api: Any, demo: dict[str, Any]) -> None:
    started = api("agent1").post("/api/v1/conversations/", {
        "line": demo["sales_line"].pk, "phone": "+5491155556011", **follow_up()}, format="json")
    assert started.status_code == 201, started.content
    conversation = Conversation.objects.get(pk=started.json()["id"])
    assert expire_unanswered() == 0
    age(conversation)
    assert expire_unanswered() == 1
    assert AuditEntry.objects.get(kind=AuditEntry.Kind.EXPIRED).data["reason"] == "template_unanswered"


def test_the_agents_template_reactivates_it_and_reports_count_it(
        api: Any, customer_says: Callable[..., Conversation]) -> None:
    conversation = customer_says("hola", phone="+5491155556021")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    age(conversation)
    assert expire_unanswered() == 1
    assert send(api, conversation, {"text": "hola"}).status_code == 422  # the window is closed
    assert Conversation.objects.get(pk=conversation.pk).expired

    assert send(api, conversation, follow_up()).status_code == 201
    conversation.refresh_from_db()
    assert not conversation.expired and conversation.expired_at is not None
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.REACTIVATED)
    assert (entry.actor.username, entry.data["via"]) == ("agent1", "template")
    assert StreamEvent.objects.filter(type="conversation.reactivated").count() == 1
    assert expire_unanswered() == 0  # the template is recent

    sales = Campaign.objects.get(name="Sales")
    since = (timezone.localdate() - datetime.timedelta(days=3)).isoformat()
    summary = api("supervisor").get(f"/api/v1/reports/summary/?campaign={sales.pk}&from={since}").json()
    assert summary["campaigns"][0]["expired"] == 1  # still counted once reactivated


def test_a_supervisor_reactivates_one_in_the_general_inbox(api: Any,
                                                           customer_says: Callable[..., Conversation]) -> None:
    waiting = customer_says("hola", phone="+5491155556031")
    age(waiting)
    assert expire_unanswered() == 1
    assert send(api, waiting, follow_up(), user="agent1").status_code == 403  # capture it first
    response = send(api, waiting, follow_up(), user="supervisor")
    assert response.status_code == 201, response.content
    waiting.refresh_from_db()
    assert not waiting.expired and waiting.status == Conversation.Status.NEW and waiting.agent_id is None
    assert AuditEntry.objects.get(kind=AuditEntry.Kind.REACTIVATED).actor.username == "supervisor"

    agents_own = customer_says("hola", phone="+5491155556032")
    assert api("agent1").post(f"/api/v1/conversations/{agents_own.pk}/capture/").status_code == 200
    refused = send(api, agents_own, follow_up(), user="supervisor")
    assert refused.status_code in (403, 404)  # hers alone (unless the supervisor joins it)
    assert not Message.objects.filter(conversation=agents_own, direction="out", sender__username="supervisor")
    assert send(api, agents_own, {"text": "hola"}, user="supervisor").status_code in (403, 404)


def test_the_customer_writing_again_reactivates_it(customer_says: Callable[..., Conversation]) -> None:
    conversation = customer_says("hola", phone="+5491155556041")
    age(conversation)
    assert expire_unanswered() == 1
    again = customer_says("¿hay alguien?", phone="+5491155556041")
    assert again.pk == conversation.pk and not again.expired
    assert AuditEntry.objects.get(kind=AuditEntry.Kind.REACTIVATED).data["via"] == "customer"


def test_housekeeping_closes_expired_ones_and_hands_out_to_the_freed_agent(
        customer_says: Callable[..., Conversation]) -> None:
    Campaign.objects.filter(name="Sales").update(routing="round_robin")
    AgentProfile.objects.filter(user__username="agent1").update(capacity=1)
    AgentProfile.objects.filter(user__username__in=["agent2", "agent3"]).update(status="offline")
    expired = customer_says("hola", phone="+5491155556051")
    assert Conversation.objects.get(pk=expired.pk).agent.username == "agent1"
    age(expired, datetime.timedelta(days=3))
    assert expire_unanswered() == 1
    waiting = customer_says("hola", phone="+5491155556052")
    stale_not_expired = customer_says("hola", phone="+5491155556053")
    age(stale_not_expired, datetime.timedelta(hours=30))
    Conversation.objects.filter(pk=stale_not_expired.pk).update(status="attended")  # an agent answered it
    assert Conversation.objects.get(pk=waiting.pk).status == "new"  # agent1 is full

    out = StringIO()
    call_command("close_stale_conversations", "--days", "1", "--expired", stdout=out)
    assert "Closed 1 conversation" in out.getvalue()
    closed = Conversation.objects.get(pk=expired.pk)
    assert closed.status == "closed" and closed.closed_by_system
    assert AuditEntry.objects.get(kind="closed", conversation=closed).data == {
        "reason": "stale", "older_than_hours": 24.0, "expired": True}
    assert Conversation.objects.get(pk=stale_not_expired.pk).status == "attended"
    handed = Conversation.objects.get(pk=waiting.pk)
    assert handed.status == "attended" and handed.agent.username == "agent1"


def test_the_expiry_sweep_reads_its_partial_index(demo: dict[str, Any]) -> None:
    """On PostgreSQL with many closed and fresh conversations, the sweep's query is a range of
    conv_expiry_due_idx, not a scan of the conversations."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")
    line = demo["sales_line"]
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(line=line, campaign=line.campaign, customer_phone=f"+54911{n:08d}",
                     status=Conversation.Status.CLOSED if n % 50 else Conversation.Status.ATTENDED,
                     last_message_at=now - datetime.timedelta(minutes=n % 600))
        for n in range(20_000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_conversation")
    with CaptureQueriesContext(connection) as ctx:
        expire_unanswered()
    sql = next(q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "inbox_conversation"."id"'))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "conv_expiry_due_idx" in plan, plan


def test_the_admin_filters_expired_ones_and_closes_them_through_the_action(
        customer_says: Callable[..., Conversation]) -> None:
    expired = customer_says("hola", phone="+5491155556061")
    fresh = customer_says("hola", phone="+5491155556062")
    age(expired)
    assert expire_unanswered() == 1
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    listed = admin.get("/admin/inbox/conversation/", {"expired__exact": "1"}).content.decode()
    assert f"/admin/inbox/conversation/{expired.pk}/change/" in listed
    assert f"/admin/inbox/conversation/{fresh.pk}/change/" not in listed
    response = admin.post("/admin/inbox/conversation/?expired__exact=1", {
        "action": "close_by_system", "_selected_action": [expired.pk]}, follow=True)
    assert b"1 conversation(s) closed." in response.content
    assert Conversation.objects.get(pk=expired.pk).status == "closed"
    assert AuditEntry.objects.get(kind="closed", conversation=expired).actor.username == "admin"


def test_conversations_that_never_expire_do_not_starve_the_sweep(demo: dict[str, Any],
                                                                  customer_says: Callable[..., Conversation]) -> None:
    """More answered-then-silent conversations than a sweep's batch, all older: the unanswered one
    behind them still expires."""
    line = demo["sales_line"]
    agent = get_user_model().objects.get(username="agent1")
    long_ago = timezone.now() - datetime.timedelta(days=5)
    answered = Conversation.objects.bulk_create(
        Conversation(line=line, campaign=line.campaign, customer_phone=f"+54911{n:08d}", agent=agent,
                     status=Conversation.Status.ATTENDED, last_inbound_at=long_ago, last_message_at=long_ago)
        for n in range(EXPIRY_BATCH + 20))
    Message.objects.bulk_create(
        Message(conversation=c, line=line, direction="out", kind="text", body="¿Algo más?", sender=agent,
                status="read", provider_message_id=f"wamid.answered.{c.pk}") for c in answered)
    Message.objects.filter(conversation__in=answered).update(created_at=long_ago + datetime.timedelta(minutes=1))
    unanswered = customer_says("hola", phone="+5491155556071")
    age(unanswered)
    assert expire_unanswered() == 1
    assert Conversation.objects.get(pk=unanswered.pk).expired
    assert not Conversation.objects.filter(expired=True).exclude(pk=unanswered.pk).exists()
