"""/ws/agent/ and /ws/sandbox/<line>/ through Channels' WebsocketCommunicator: who is let in, who
receives what, and catch-up after a reconnect. Events come from the real flows (sandbox webhook +
task worker, REST API), published by the real publish() on commit."""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from tests.conftest import api_token

from conftest import drain_tasks
from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign
from conversa.core.worker import sweep
from conversa.realtime.groups import agent_group, campaign_group, line_group
from conversa.realtime.models import EventTarget, StreamEvent
from conversa.realtime.services import prune_events
from conversa.realtime.stream import current_event_id
from conversa.whatsapp.models import Provider


def uid(username: str) -> int:
    return int(get_user_model().objects.get(username=username).pk)


def campaign_id(name: str) -> int:
    return int(Campaign.objects.get(name=name).pk)


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event"] for f in frames]


def targeted_ids(groups: set[str], after: int, before: int) -> list[int]:
    return sorted(set(EventTarget.objects.filter(group__in=groups, event_id__gt=after, event_id__lt=before)
                      .values_list("event_id", flat=True)))


def capture(api: Any, username: str, conversation_id: int) -> None:
    response = api(username).post(f"/api/v1/conversations/{conversation_id}/capture/")
    assert response.status_code == 200, response.content


def reply(api: Any, username: str, conversation_id: int, text: str) -> None:
    response = api(username).post(f"/api/v1/conversations/{conversation_id}/messages/", {"text": text},
                                  format="json")
    assert response.status_code == 201, response.content


# --- who gets in -----------------------------------------------------------------------------

def test_anonymous_is_closed_with_4401(demo, open_socket):
    socket = open_socket(None, connect=False)
    assert socket.connect()[0]
    assert socket.close_code() == 4401


def test_agent_without_the_whatsapp_skill_is_closed_with_4403(demo, open_socket):
    socket = open_socket("agent4", connect=False)
    assert socket.connect()[0]
    assert socket.close_code() == 4403


def test_session_socket_from_a_foreign_or_missing_origin_is_refused(demo, open_socket):
    foreign = open_socket("agent1", origin="http://evil.example", connect=False)
    assert not foreign.connect()[0]
    missing = open_socket("agent1", origin=None, connect=False)
    assert not missing.connect()[0]


def test_token_in_query_authenticates_an_api_client_without_origin(demo, open_socket):
    key = api_token("agent1")
    socket = open_socket(None, path=f"/ws/agent/?token={key}", origin=None)
    assert socket.hello == {"event": "hello", "payload": {"last_event_id": current_event_id()}}

    header = open_socket(None, origin=None, headers=[(b"authorization", f"Token {key}".encode())])
    assert header.hello["event"] == "hello"

    bad = open_socket(None, path="/ws/agent/?token=nope", origin=None, connect=False)
    assert bad.connect()[0]
    assert bad.close_code() == 4401


# --- who receives what -----------------------------------------------------------------------

def test_customer_message_reaches_its_campaign_agents_and_nobody_else(demo, open_socket, customer_says,
                                                                      barrier):
    sales_only = open_socket("agent1")
    sales_and_support = open_socket("agent3")

    conversation = customer_says("Necesito ayuda", line=demo["support_line"])

    frames = sales_and_support.until(lambda f: f["event"] == "message.created")
    assert kinds(frames) == ["conversation.created", "message.created"]
    created = frames[0]
    assert isinstance(created["id"], int)
    assert created["payload"]["conversation"]["id"] == conversation.pk
    assert created["payload"]["conversation"]["campaign"] == campaign_id("Support")
    assert frames[1]["payload"]["message"]["body"] == "Necesito ayuda"
    # agent1 is not in Support: nothing reached her before the marker did.
    assert sales_only.until_barrier(barrier(agent_group(uid("agent1")))) == []

    customer_says("Hola", line=demo["sales_line"])
    assert kinds(sales_only.until(lambda f: f["event"] == "message.created")) == [
        "conversation.created", "message.created"]


def test_capture_is_announced_to_the_other_agents(demo, api, open_socket, customer_says):
    conversation = customer_says("Hola")
    agent2 = open_socket("agent2")

    capture(api, "agent1", conversation.pk)

    frame = agent2.until(lambda f: f["event"] == "conversation.captured")[-1]
    assert frame["payload"]["conversation"]["id"] == conversation.pk
    assert frame["payload"]["conversation"]["agent"] == uid("agent1")


def test_personal_inbox_events_reach_only_their_agent_and_supervisors(demo, api, open_socket, customer_says,
                                                                      barrier):
    conversation = customer_says("Hola")
    capture(api, "agent1", conversation.pk)
    agent1, agent2, supervisor = open_socket("agent1"), open_socket("agent2"), open_socket("supervisor")

    reply(api, "agent1", conversation.pk, "Hola Ana, ¿en qué te ayudo?")
    drain_tasks()  # the send: message.status
    customer_says("Quiero el plan pro")

    marker = barrier(agent_group(uid("agent1")), agent_group(uid("agent2")), agent_group(uid("supervisor")))
    mine = agent1.until_barrier(marker)
    assert kinds(mine).count("message.created") == 2
    assert "message.status" in kinds(mine)
    assert {f["payload"]["conversation"]["id"] for f in mine} == {conversation.pk}
    assert agent2.until_barrier(marker) == []
    assert [f["id"] for f in supervisor.until_barrier(marker)] == [f["id"] for f in mine]


def test_supervisor_sees_only_her_campaigns_and_each_event_once(demo, api, open_socket, customer_says, barrier):
    support_lead = get_user_model().objects.create_user("lead", password="demo")
    AgentProfile.objects.create(user=support_lead, role=AgentProfile.Role.SUPERVISOR,
                                group=AgentGroup.objects.get(name="WhatsApp agents"))
    Campaign.objects.get(name="Support").supervisors.add(support_lead)
    lead, supervisor = open_socket("lead"), open_socket("supervisor")

    sales = customer_says("Hola", phone="+5491155550011")
    capture(api, "agent1", sales.pk)
    support = customer_says("Ayuda", phone="+5491155550012", line=demo["support_line"])

    # A supervisor's own agent-<id> group: a marker with no campaign reaching her through the
    # "supervisors" group would be (rightly) filtered out.
    marker = barrier(agent_group(support_lead.pk), agent_group(uid("supervisor")))
    seen_by_lead = lead.until_barrier(marker)
    assert {f["payload"]["conversation"]["id"] for f in seen_by_lead} == {support.pk}
    seen_by_supervisor = supervisor.until_barrier(marker)
    assert {f["payload"]["conversation"]["id"] for f in seen_by_supervisor} == {sales.pk, support.pk}
    # conversation.created goes to both "supervisors" and the campaign group: delivered once.
    ids = [f["id"] for f in seen_by_supervisor]
    assert len(ids) == len(set(ids))
    assert kinds(seen_by_supervisor).count("conversation.created") == 2


# --- catch-up --------------------------------------------------------------------------------

def test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(demo, api, open_socket,
                                                                         customer_says, barrier):
    agent1_groups = {agent_group(uid("agent1")), campaign_group(campaign_id("Sales"))}
    socket = open_socket("agent1")
    first = customer_says("Hola", phone="+5491155550001")
    received = socket.until(lambda f: f["event"] == "message.created")
    last_seen = max(f["id"] for f in received)
    socket.disconnect()

    # While she is away: a new conversation that agent2 captures and answers (the capture is
    # hers to know, the answer is not), the first customer writes again, Support gets one.
    second = customer_says("Buen día", phone="+5491155550002")
    capture(api, "agent2", second.pk)
    reply(api, "agent2", second.pk, "Hola, soy Martín")
    drain_tasks()
    customer_says("¿Hay alguien?", phone="+5491155550001")
    customer_says("Soporte", phone="+5491155550003", line=demo["support_line"])
    missed = targeted_ids(agent1_groups, last_seen, current_event_id() + 1)
    assert len(missed) >= 4

    socket = open_socket("agent1", last_event_id=last_seen)
    assert socket.hello["payload"]["last_event_id"] == current_event_id()
    # And life goes on right after the reconnect: live events follow the replay.
    third = customer_says("Sigo acá", phone="+5491155550004")

    marker = barrier(agent_group(uid("agent1")))
    frames = socket.until_barrier(marker)
    ids = [f["id"] for f in frames]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert ids == targeted_ids(agent1_groups, last_seen, marker), "an event was missed"
    assert ids[: len(missed)] == missed
    conversations = {f["payload"]["conversation"]["id"] for f in frames}
    assert conversations == {first.pk, second.pk, third.pk}
    # agent2's answer in her personal inbox was not replayed to agent1.
    assert all(f["payload"]["conversation"]["agent"] in (None, uid("agent2")) for f in frames)
    assert not [f for f in frames if f["event"] == "message.created"
                and f["payload"]["message"]["direction"] == "out"]


def test_resume_frame_replays_what_was_missed_without_repeating_live_events(demo, open_socket, customer_says):
    before = current_event_id()
    customer_says("Antes", phone="+5491155550021")  # missed: she was not connected
    missed = targeted_ids({campaign_group(campaign_id("Sales"))}, before, current_event_id() + 1)
    socket = open_socket("agent1")
    customer_says("Durante", phone="+5491155550022")  # live
    live = socket.until(lambda f: f["event"] == "message.created")

    socket.send({"type": "resume", "last_event_id": before})
    # The consumer handles a client's frames in order, so the pong comes after the whole replay (a
    # barrier event published now could overtake a resume the consumer has not started on yet).
    socket.send({"type": "ping"})
    replayed = [f for f in socket.until(lambda f: f.get("event") == "pong")[:-1] if "id" in f]

    assert [f["id"] for f in replayed] == missed
    assert not {f["id"] for f in live} & {f["id"] for f in replayed}


def test_last_event_id_too_old_gets_refetch(demo, open_socket, customer_says):
    customer_says("Hola", phone="+5491155550031")
    cursor = current_event_id()
    customer_says("Hola", phone="+5491155550032")
    StreamEvent.objects.filter(pk__gt=cursor).update(created_at=timezone.now() - datetime.timedelta(minutes=30))

    socket = open_socket("agent1", last_event_id=cursor)
    frame = socket.receive()
    assert frame["event"] == "refetch"
    assert frame["payload"]["last_event_id"] == current_event_id()


def test_too_many_missed_or_unknown_cursor_gets_refetch(demo, open_socket, customer_says, settings):
    cursor = current_event_id()
    customer_says("Uno", phone="+5491155550041")
    customer_says("Dos", phone="+5491155550042")
    settings.CONVERSA_EVENT_REPLAY_MAX_EVENTS = 3
    assert open_socket("agent1", last_event_id=cursor).receive()["event"] == "refetch"
    # A cursor from the future (another database, a restored backup): refetch as well.
    assert open_socket("agent1", last_event_id=current_event_id() + 100).receive()["event"] == "refetch"


def test_cursor_older_than_the_pruned_log_gets_refetch(demo, open_socket, customer_says):
    customer_says("Viejo", phone="+5491155550051")
    cursor = current_event_id()
    StreamEvent.objects.filter(pk__lte=cursor).update(created_at=timezone.now() - datetime.timedelta(days=2))
    customer_says("Nuevo", phone="+5491155550052")
    assert prune_events(datetime.timedelta(days=1)) > 0

    frame = open_socket("agent1", last_event_id=cursor).receive()
    assert frame["event"] == "refetch"


def test_sweep_prunes_the_event_log(demo, customer_says):
    customer_says("Viejo", phone="+5491155550061")
    old = list(StreamEvent.objects.values_list("pk", flat=True))
    StreamEvent.objects.update(created_at=timezone.now() - datetime.timedelta(days=2))
    customer_says("Nuevo", phone="+5491155550062")
    kept = StreamEvent.objects.exclude(pk__in=old).count()

    assert sweep()["events_pruned"] == len(old)
    assert StreamEvent.objects.count() == kept > 0
    assert not EventTarget.objects.filter(event_id__in=old).exists()


# --- the sandbox simulator ------------------------------------------------------------------

def test_sandbox_socket_follows_its_lines_messages(demo, api, open_socket, customer_says, barrier):
    line = demo["sales_line"]
    simulator = open_socket(None, path=f"/ws/sandbox/{line.pk}/")

    conversation = customer_says("Hola", line=line)
    assert kinds(simulator.until(lambda f: f["event"] == "message.created")) == ["message.created"]
    capture(api, "agent1", conversation.pk)
    reply(api, "agent1", conversation.pk, "¡Hola!")
    drain_tasks()

    marker = barrier(line_group(line.pk), event_type="message.marker")
    frames = simulator.until_barrier(marker)
    assert kinds(frames) == ["message.created", "message.status"]
    assert frames[0]["payload"]["message"]["body"] == "¡Hola!"
    assert frames[0]["payload"]["message"]["direction"] == "out"


def test_sandbox_socket_only_for_sandbox_lines(demo, open_socket):
    line = demo["sales_line"]
    Provider.objects.filter(pk=line.provider_id).update(kind=Provider.Kind.META)
    socket = open_socket(None, path=f"/ws/sandbox/{line.pk}/", connect=False)
    assert socket.connect()[0]
    assert socket.close_code() == 4404
