"""Automatic distribution: round robin and least busy, honouring status and capacity."""

from __future__ import annotations

from collections import Counter

from conversa.accounts.models import AgentProfile
from conversa.campaigns.models import Campaign, DispositionOption
from conversa.inbox.models import AuditEntry, Conversation
from conversa.realtime.models import StreamEvent


def set_routing(policy: str) -> None:
    Campaign.objects.filter(name="Sales").update(routing=policy)


def owners() -> Counter[str]:
    return Counter(c.agent.username for c in Conversation.objects.filter(status="attended").select_related("agent"))


def test_round_robin_spreads_evenly_among_ready_skilled_agents(customer_says):
    set_routing("round_robin")
    for n in range(6):
        customer_says(f"hola {n}", phone=f"+54911555510{n:02d}")
    # agent4 is in Sales and ready, but has no WhatsApp skill.
    assert owners() == Counter({"agent1": 2, "agent2": 2, "agent3": 2})
    assert Conversation.objects.filter(status="new").count() == 0


def test_capacity_and_status_are_honoured_and_waiting_chats_follow_a_freed_agent(api, customer_says):
    set_routing("round_robin")
    AgentProfile.objects.filter(user__username__in=["agent1", "agent2", "agent3"]).update(capacity=1)
    AgentProfile.objects.filter(user__username="agent3").update(status="paused")
    conversations = [customer_says(f"hola {n}", phone=f"+54911555520{n:02d}") for n in range(4)]
    assert owners() == Counter({"agent1": 1, "agent2": 1})
    waiting = Conversation.objects.filter(status="new").order_by("id")
    assert [c.pk for c in waiting] == [conversations[2].pk, conversations[3].pk]

    # agent3 comes back: she gets the oldest waiting conversation.
    assert api("agent3").post("/api/v1/me/status/", {"status": "ready"}, format="json").status_code == 200
    assert Conversation.objects.get(pk=conversations[2].pk).agent.username == "agent3"

    # agent1 closes hers: the last waiting one is hers now.
    mine = Conversation.objects.get(agent__username="agent1")
    sale = DispositionOption.objects.get(campaign__name="Sales", name="Sale")
    assert api("agent1").post(f"/api/v1/conversations/{mine.pk}/close/", {"disposition": sale.pk},
                              format="json").status_code == 200
    assert Conversation.objects.get(pk=conversations[3].pk).agent.username == "agent1"


def test_least_busy_prefers_the_agent_with_fewest_open_conversations(api, customer_says):
    first = customer_says("uno", phone="+5491155553001")
    second = customer_says("dos", phone="+5491155553002")
    api("agent1").post(f"/api/v1/conversations/{first.pk}/capture/")
    api("agent1").post(f"/api/v1/conversations/{second.pk}/capture/")
    api("agent3").post("/api/v1/me/status/", {"status": "offline"}, format="json")
    set_routing("least_busy")
    third = customer_says("tres", phone="+5491155553003")
    assert Conversation.objects.get(pk=third.pk).agent.username == "agent2"


def test_nobody_available_leaves_it_in_the_general_inbox(customer_says):
    set_routing("least_busy")
    AgentProfile.objects.update(status="paused")
    conversation = customer_says("hola")
    assert Conversation.objects.get(pk=conversation.pk).status == "new"


def test_me_endpoint_and_status_validation(api, demo):
    me = api("agent1").get("/api/v1/me/").json()
    assert me["username"] == "agent1" and me["whatsapp"] is True and me["status"] == "ready"
    bad = api("agent1").post("/api/v1/me/status/", {"status": "sleeping"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "status"


def test_automatic_assignment_is_announced_as_assigned_not_captured(customer_says):
    set_routing("round_robin")
    conversation = customer_says("hola", phone="+5491155554101")
    conversation.refresh_from_db()
    assert conversation.status == "attended" and conversation.agent is not None
    assigned = StreamEvent.objects.get(type="conversation.assigned")
    assert assigned.payload["conversation"]["id"] == conversation.pk
    assert assigned.payload["conversation"]["agent"] == conversation.agent_id
    assert not StreamEvent.objects.filter(type="conversation.captured").exists()
    assert AuditEntry.objects.get(kind="assigned", conversation=conversation).data["agent"] == conversation.agent_id
