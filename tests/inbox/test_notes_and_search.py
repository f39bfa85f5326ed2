"""Private notes (issue 11): visible to the conversation's agents and supervisors, never sent to
the customer (no provider call, no simulator message, no unread count, no report), @mentioned
colleagues notified on their personal group. Search and history: conversations by name, phone or
text, closed ones included; the Closed list in keyset pages; the customer's earlier conversations
and their read-only transcript."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conversa.campaigns.models import DispositionOption
from conversa.inbox.actions.notes import add_note, mentioned_usernames
from conversa.inbox.models import Conversation, Message, Note
from conversa.inbox.selectors_search import closed_conversations, search_conversations
from conversa.realtime.models import EventTarget, StreamEvent

from .relay import relay_server

User = get_user_model()


def uid(username: str) -> int:
    return User.objects.get(username=username).pk


def console(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


@pytest.fixture
def attended(api, customer_says) -> Conversation:
    conversation = customer_says("Quiero el plan anual", name="Ana Torres")
    assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


def close(api, conversation: Conversation, user: str = "agent1") -> None:
    option = DispositionOption.objects.get(campaign=conversation.campaign, name="Sale")
    response = api(user).post(f"/api/v1/conversations/{conversation.pk}/close/", {"disposition": option.pk},
                              format="json")
    assert response.status_code == 200, response.content


# --------------------------------------------------------------------------- notes
def test_a_note_is_never_sent_counted_or_reported(api, attended, run_tasks, demo):
    provider = demo["sales_line"].provider
    attended.refresh_from_db()
    before = (attended.unread_count, attended.last_message_preview, attended.last_message_at)
    with relay_server() as relay:
        provider.config = {"api_url": relay.url}
        provider.save()
        response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/notes/",
                                      {"body": "VIP <b>customer</b>: check the discount"}, format="json")
        assert response.status_code == 201, response.content
        run_tasks()
    assert relay.received == []  # the provider (the sandbox relay) got nothing
    assert not Message.objects.filter(conversation=attended, body__contains="discount").exists()
    attended.refresh_from_db()
    assert (attended.unread_count, attended.last_message_preview, attended.last_message_at) == before
    note = response.json()
    assert note["author_name"] == "Laura Gómez" and note["mentions"] == []
    # The sandbox simulator (the customer's phone) and the reports' CSV never show it.
    simulator = Client().get(f"/sandbox/{demo['sales_line'].pk}/messages/", {"phone": attended.customer_phone})
    assert simulator.status_code == 200 and "discount" not in simulator.content.decode()
    csv = b"".join(console("supervisor").get("/supervisor/reports/conversations.csv").streaming_content)
    assert b"discount" not in csv
    event = StreamEvent.objects.get(type="note.created")
    groups = set(EventTarget.objects.filter(event=event).values_list("group", flat=True))
    assert f"line-{attended.line_id}" not in groups and f"agent-{uid('agent1')}" in groups


def test_the_thread_shows_notes_to_the_agent_and_the_supervisor_escaped(api, attended):
    add_note(conversation_id=attended.pk, author=User.objects.get(username="agent1"),
             body="VIP <b>customer</b>")
    for user in ("agent1", "supervisor"):
        html = console(user).get(f"/console/c/{attended.pk}/messages/").content.decode()
        assert 'data-testid="note"' in html and "VIP &lt;b&gt;customer&lt;/b&gt;" in html
        assert "Laura Gómez" in html
    listed = api("supervisor").get(f"/api/v1/conversations/{attended.pk}/notes/")
    assert [n["body"] for n in listed.json()] == ["VIP <b>customer</b>"]


def test_a_mention_notifies_the_colleague_on_her_personal_group(api, attended):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/notes/",
                                  {"body": "@agent2, can you take a look? cc @supervisor. Not @admin, laura@agent3"},
                                  format="json")
    assert response.status_code == 201, response.content
    assert sorted(response.json()["mentions"]) == sorted([uid("agent2"), uid("supervisor")])
    assert set(Note.objects.get().mentions.values_list("username", flat=True)) == {"agent2", "supervisor"}
    event = StreamEvent.objects.get(type="note.created")
    groups = set(EventTarget.objects.filter(event=event).values_list("group", flat=True))
    assert {f"agent-{uid('agent2')}", f"agent-{uid('supervisor')}"} <= groups
    assert f"agent-{uid('admin')}" not in groups and f"agent-{uid('agent3')}" not in groups
    assert event.payload["note"]["author_name"] == "Laura Gómez"


def test_mentions_are_usernames_after_an_at_sign():
    assert mentioned_usernames("hi @Agent2. and @m.perez, mail a@b.com") == {"agent2", "m.perez"}


@pytest.mark.parametrize("body, status, field", [
    ({"body": "   "}, 400, "body"),
    ({"body": "x" * 4001}, 400, "body"),
    ({}, 400, "body"),
])
def test_bad_notes_are_a_400_naming_the_field(api, attended, body, status, field):
    response = api("agent1").post(f"/api/v1/conversations/{attended.pk}/notes/", body, format="json")
    assert response.status_code == status, response.content
    assert field in response.content.decode()
    assert not Note.objects.exists()


def test_another_agents_conversation_is_a_404_for_notes(api, attended):
    assert api("agent2").post(f"/api/v1/conversations/{attended.pk}/notes/", {"body": "hi"},
                              format="json").status_code == 404
    assert api("agent2").get(f"/api/v1/conversations/{attended.pk}/notes/").status_code == 404
    assert console("agent2").post(f"/console/c/{attended.pk}/notes/add/", {"body": "hi"}).status_code == 404
    assert not Note.objects.exists()


def test_a_mentioned_colleague_reads_the_conversation_and_answers_in_a_note_but_never_writes_to_the_customer(
        api, attended, demo):
    """The notification's link must open: @agent2 reads the thread and the notes and answers in a
    note; replying to the customer, closing or transferring stays the holder's."""
    assert api("agent2").get(f"/api/v1/conversations/{attended.pk}/").status_code == 404  # not yet
    assert api("agent1").post(f"/api/v1/conversations/{attended.pk}/notes/", {"body": "@agent2 ¿lo ves?"},
                              format="json").status_code == 201
    agent2 = api("agent2")
    assert agent2.get(f"/api/v1/conversations/{attended.pk}/").status_code == 200
    assert agent2.get(f"/api/v1/conversations/{attended.pk}/messages/").status_code == 200
    assert [n["body"] for n in agent2.get(f"/api/v1/conversations/{attended.pk}/notes/").json()] == ["@agent2 ¿lo ves?"]
    pane = console("agent2").get(f"/console/c/{attended.pk}/")
    assert pane.status_code == 200 and b'name="text"' not in pane.content  # no composer: read only
    assert b'name="text"' in console("agent1").get(f"/console/c/{attended.pk}/").content  # the holder's has one
    answer = agent2.post(f"/api/v1/conversations/{attended.pk}/notes/", {"body": "@agent1 sí, es el plan oro"},
                         format="json")
    assert answer.status_code == 201 and answer.json()["mentions"] == [uid("agent1")]
    reply = agent2.post(f"/api/v1/conversations/{attended.pk}/messages/", {"text": "Hola"}, format="json")
    assert reply.status_code in (403, 404) and not Message.objects.filter(conversation=attended, body="Hola").exists()
    assert agent2.post(f"/api/v1/conversations/{attended.pk}/close/", {}, format="json").status_code in (400, 403, 404)
    attended.refresh_from_db()
    assert attended.status == Conversation.Status.ATTENDED and attended.agent.username == "agent1"
    # Colleagues nobody mentioned, and agents of other campaigns, still get a 404.
    assert api("agent3").get(f"/api/v1/conversations/{attended.pk}/").status_code == 404


def test_a_mention_opens_nothing_once_the_colleague_leaves_the_campaign(api, attended, demo):
    assert api("agent1").post(f"/api/v1/conversations/{attended.pk}/notes/", {"body": "@agent2 mirá"},
                              format="json").status_code == 201
    assert api("agent2").get(f"/api/v1/conversations/{attended.pk}/").status_code == 200
    attended.campaign.agents.remove(uid("agent2"))
    assert api("agent2").get(f"/api/v1/conversations/{attended.pk}/").status_code == 404


# --------------------------------------------------------------------------- search and history
def test_search_by_name_phone_and_text_closed_ones_included(api, attended, customer_says):
    other = customer_says("Necesito una factura", phone="+5491155550002", name="Bruno Díaz")
    assert api("agent1").post(f"/api/v1/conversations/{other.pk}/capture/").status_code == 200
    close(api, other)
    agent1 = User.objects.get(username="agent1")
    assert [c.pk for c in search_conversations(agent1, text="torres")] == [attended.pk]
    assert [c.pk for c in search_conversations(agent1, text="5550002")] == [other.pk]
    assert [c.pk for c in search_conversations(agent1, text="factura")] == [other.pk]  # closed, by text
    assert [c.pk for c in search_conversations(agent1, text="fact")] == [other.pk]  # a word's beginning
    assert search_conversations(User.objects.get(username="agent2"), text="factura") == []  # not hers
    assert {c.pk for c in search_conversations(User.objects.get(username="supervisor"), text="plan")} == {attended.pk}
    found = api("agent1").get("/api/v1/conversations/search/", {"q": "Bruno"}).json()
    assert [c["id"] for c in found] == [other.pk] and found[0]["status"] == "closed"
    too_long = api("agent1").get("/api/v1/conversations/search/", {"q": "x" * 101})
    assert too_long.status_code == 400 and too_long.json()["field"] == "q"
    html = console("agent1").get("/console/search/", {"q": "factura"}).content.decode()
    assert 'data-testid="search-row"' in html and "Bruno Díaz" in html and "Ana Torres" not in html


def test_the_closed_list_pages_by_keyset(api, customer_says, demo):
    ids = []
    for n in range(5):
        conversation = customer_says(f"hola {n}", phone=f"+549115555010{n}", name=f"Cliente {n}")
        assert api("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
        close(api, conversation)
        ids.append(conversation.pk)
    agent1 = User.objects.get(username="agent1")
    first = closed_conversations(agent1, limit=2)
    second = closed_conversations(agent1, after=first.cursor, limit=2)
    third = closed_conversations(agent1, after=second.cursor, limit=2)
    assert [c.pk for c in first.rows + second.rows + third.rows] == list(reversed(ids))
    assert third.cursor is None
    assert closed_conversations(User.objects.get(username="agent2")).rows == []
    # A supervisor's: every campaign of hers, merged newest first, in the same keyset pages.
    support = customer_says("soporte", phone="+5491155550199", name="Cliente Soporte", line=demo["support_line"])
    assert api("agent3").post(f"/api/v1/conversations/{support.pk}/capture/").status_code == 200
    option = DispositionOption.objects.filter(campaign=support.campaign).order_by("id").first()
    assert api("agent3").post(f"/api/v1/conversations/{support.pk}/close/", {"disposition": option.pk},
                              format="json").status_code == 200
    supervisor = User.objects.get(username="supervisor")
    pages, cursor = [], None
    while True:
        page = closed_conversations(supervisor, after=cursor, limit=4)
        pages += [c.pk for c in page.rows]
        if (cursor := page.cursor) is None:
            break
    assert pages == [support.pk, *reversed(ids)]
    page = console("agent1").get("/console/closed/", {"after": first.cursor.encode()}).content.decode()
    assert f'id="row-closed-{ids[2]}"' in page and f'id="row-closed-{ids[4]}"' not in page
    assert console("agent1").get("/console/closed/", {"after": "nonsense"}).status_code == 400


def test_previous_conversations_open_a_read_only_transcript(api, attended, customer_says):
    add_note(conversation_id=attended.pk, author=User.objects.get(username="agent1"), body="Pidió el plan anual")
    close(api, attended)
    again = customer_says("Hola de nuevo", name="Ana Torres")
    assert again.pk != attended.pk
    assert api("agent2").post(f"/api/v1/conversations/{again.pk}/capture/").status_code == 200
    agent2 = console("agent2")
    history = agent2.get(f"/console/c/{again.pk}/history/").content.decode()
    assert f"/console/c/{again.pk}/history/{attended.pk}/" in history
    transcript = agent2.get(f"/console/c/{again.pk}/history/{attended.pk}/")
    assert transcript.status_code == 200
    html = transcript.content.decode()
    assert "Quiero el plan anual" in html and "Pidió el plan anual" in html and 'data-testid="transcript"' in html
    assert "composer" not in html and "hx-post" not in html  # read only
    # Someone else's conversation is no "previous conversation" of this customer: 404.
    stranger = customer_says("otra persona", phone="+5491155550077", name="Otro")
    assert agent2.get(f"/console/c/{again.pk}/history/{stranger.pk}/").status_code == 404
    assert console("agent3").get(f"/console/c/{again.pk}/history/{attended.pk}/").status_code == 404


def test_text_search_reads_the_full_text_index_on_postgresql(demo):
    """PostgreSQL: the words' query is a bitmap scan of msg_body_fts_idx (GIN), not a scan of every
    message. SQLite: a plain case-insensitive LIKE."""
    from django.db import connection

    from conversa.inbox.selectors_search import _text_matches

    line = demo["sales_line"]
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491100000001")
    words = ["hola", "precio", "envío", "gracias", "cuota", "tarjeta", "pedido", "demora"]
    Message.objects.bulk_create([Message(conversation=conversation, line=line, direction="in", status="received",
                                         body=f"{words[i % 8]} {words[(i * 3) % 8]} número {i}")
                                 for i in range(20_000)] + [
        Message(conversation=conversation, line=line, direction="in", status="received", body="una factura")],
        batch_size=2000)
    query = _text_matches("factura").values("conversation_id")
    assert list(query) == [{"conversation_id": conversation.pk}]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE inbox_message")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "msg_body_fts_idx" in plan, plan
        else:
            assert "LIKE" in sql.upper()
