"""A batch's plain messages stored set-based (inbox/actions/inbound_bulk.py) end exactly as the
same messages applied one at a time: messages, conversations and the events agents get, in order;
with a replay, a repeat inside the batch, a new customer, media and a menu in the same batch."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversa.campaigns.models import Campaign, TimeGroup
from conversa.inbox.actions.inbound_bulk import insert_rows
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.outreach.models import BulkRecipient, BulkSend, OptOut
from conversa.realtime.models import StreamEvent
from conversa.whatsapp.intake import store_webhook
from conversa.whatsapp.models import Line, MessageTemplate
from conversa.whatsapp.services import process_webhook_events

CUSTOMERS = {"ana": "01", "beto": "02", "caro": "03", "dani": "04", "eva": "05"}


def phone(world: str, who: str) -> str:
    return f"+549115555{world}{CUSTOMERS[who]}"


def stored(line: Line, world: str, who: str, message_id: str, **fields: Any) -> int:
    body = {"id": f"{world}-{message_id}", "from": phone(world, who), "name": who.title(), **fields}
    event, _created = store_webhook(line, json.dumps(body).encode(), {})
    return event.pk


def make_world(line: Line, world: str, *, in_one_batch: bool) -> None:
    # Ana, Beto and Caro already have an open conversation (one in the menu if the line has one).
    for who in ("ana", "beto", "caro"):
        process_webhook_events(event_ids=[stored(line, world, who, f"{who}-0", text=f"Hola, soy {who}")])
    batch = [
        stored(line, world, "ana", "ana-1", text="primero"),
        stored(line, world, "beto", "beto-1", text="¿precio?"),
        stored(line, world, "ana", "ana-2", type="location", latitude=-34.6, longitude=-58.4, location_name="Casa"),
        stored(line, world, "beto", "beto-0", text="Hola (otra vez)"),  # a replay of a stored message
        stored(line, world, "caro", "caro-1", type="image", media_url="http://127.0.0.1:9/x.jpg",
               mime_type="image/jpeg"),
        stored(line, world, "dani", "dani-1", text="nueva"),  # a new customer
        stored(line, world, "ana", "ana-3", text="último"),
        stored(line, world, "eva", "eva-1", text="hola"),
        stored(line, world, "eva", "eva-2", text="sigo"),
    ]
    if in_one_batch:
        process_webhook_events(event_ids=batch)
    else:
        for event_id in batch:
            process_webhook_events(event_ids=[event_id])


def outcome(line: Line, world: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for who in CUSTOMERS:
        conversation = Conversation.objects.filter(line=line, customer_phone=phone(world, who)).first()
        if conversation is None:
            found[who] = None
            continue
        messages = list(conversation.messages.order_by("pk"))
        events = [e.payload for e in StreamEvent.objects.filter(type="message.created").order_by("pk")
                  if e.payload["conversation"]["id"] == conversation.pk]
        found[who] = {
            "status": conversation.status, "unread": conversation.unread_count,
            "preview": conversation.last_message_preview, "name": conversation.customer_profile_name,
            "window_open": conversation.last_inbound_at is not None,
            "messages": [(m.direction, m.kind, m.body, (m.provider_message_id or "").removeprefix(f"{world}-"),
                          m.payload) for m in messages],
            "events": [(e["message"]["body"], e["conversation"]["unread_count"],
                        e["conversation"]["last_message_preview"]) for e in events],
            "created_events": StreamEvent.objects.filter(type="conversation.created",
                                                         payload__conversation__id=conversation.pk).count(),
            "audit": sorted((a.kind, json.dumps(a.data, sort_keys=True), a.contact_id)
                            for a in AuditEntry.objects.filter(conversation=conversation)),
        }
    return found


@pytest.fixture(params=["open", "out_of_hours"])
def line(request: pytest.FixtureRequest, demo: dict[str, Any]) -> Line:
    """The sales line within business hours (no time group: new conversations open set-based too)
    or outside them (a time group with no range: new customers get the out-of-hours answer)."""
    line = demo["sales_line"]
    line.time_group = TimeGroup.objects.create(name="Never") if request.param == "out_of_hours" else None
    line.save(update_fields=["time_group"])
    return line


def test_a_batch_ends_as_the_same_messages_one_at_a_time(line: Line) -> None:
    with CaptureQueriesContext(connection) as single:
        make_world(line, "70", in_one_batch=False)
    with CaptureQueriesContext(connection) as batch:
        make_world(line, "80", in_one_batch=True)
    one_at_a_time, batched = outcome(line, "70"), outcome(line, "80")
    assert batched == one_at_a_time
    assert [m[3] for m in batched["ana"]["messages"] if m[0] == Message.Direction.INBOUND] == [
        "ana-0", "ana-1", "ana-2", "ana-3"]
    assert batched["ana"]["events"][-1][1] == batched["ana"]["unread"]
    assert batched["dani"]["created_events"] == 1 and batched["eva"]["created_events"] == 1
    # Ana's three and Beto's new one went in one INSERT (three saved), and Dani's and Eva's three in
    # the same one when their conversations open plainly, within business hours (three more).
    saved = 6 if line.time_group is None else 3
    assert inserts(batch) == inserts(single) - saved


def inserts(queries: CaptureQueriesContext) -> int:
    return sum(q["sql"].startswith('INSERT INTO "inbox_message"') for q in queries.captured_queries)


def test_a_replayed_batch_stores_nothing_twice(line: Line) -> None:
    make_world(line, "90", in_one_batch=True)
    before = outcome(line, "90")
    events = StreamEvent.objects.count()
    again = [stored(line, "90", who, f"{who}-{n}", text="otra vez") for who, n in (("ana", 1), ("ana", 3), ("beto", 1))]
    process_webhook_events(event_ids=again)
    assert outcome(line, "90") == before
    assert StreamEvent.objects.count() == events


def bulk_recipient_reads(queries: CaptureQueriesContext) -> int:
    return sum(q["sql"].startswith('SELECT') and 'FROM "outreach_bulkrecipient"' in q["sql"]
               for q in queries.captured_queries)


def test_replies_to_a_bulk_send_are_linked_with_one_read_per_batch(demo: dict[str, Any]) -> None:
    """New customers answering a bulk send (outreach's observer, in its batch form): their
    conversations go to the send's campaign and are linked to their recipients as one at a time
    would do it, with one read of bulk recipients for the whole batch instead of one per customer;
    an old send is not answered; "BAJA" still opts out."""
    line = demo["sales_line"]
    promo = Campaign.objects.create(name="Promo", contact_database=line.campaign.contact_database)
    template = MessageTemplate.objects.create(line=line, provider_template_id="tpl-bulk-reply", name="promo",
                                              language="es", body="Hola", status=MessageTemplate.Status.APPROVED)
    job = BulkSend.objects.create(name="Promo", line=line, campaign=promo, template=template,
                                  source=BulkSend.Source.CSV)
    now = timezone.now()
    for world in ("71", "81"):
        for row, who in enumerate(("ana", "beto", "caro", "dani"), start=1):
            sent_at = now - datetime.timedelta(days=30 if who == "dani" else 0)  # Dani's is too old
            BulkRecipient.objects.create(job=job, line=line, row=row, phone=phone(world, who), status="sent",
                                         sent_at=sent_at)

    def write(world: str) -> list[int]:
        return [stored(line, world, who, f"{who}-1", text=text) for who, text in (
            ("ana", "Me interesa"), ("beto", "¿precio?"), ("ana", "gracias"), ("caro", "BAJA"), ("dani", "hola"),
            ("eva", "hola"))]

    for event_id in write("71"):
        process_webhook_events(event_ids=[event_id])
    with CaptureQueriesContext(connection) as batch:
        process_webhook_events(event_ids=write("81"))

    def linked(world: str) -> dict[str, Any]:
        found = {}
        for who in ("ana", "beto", "caro", "dani", "eva"):
            conversation = Conversation.objects.get(line=line, customer_phone=phone(world, who))
            recipient = BulkRecipient.objects.filter(line=line, phone=phone(world, who)).first()
            created = StreamEvent.objects.get(type="conversation.created", payload__conversation__id=conversation.pk)
            found[who] = (conversation.campaign_id, created.payload["conversation"]["campaign"],
                          recipient is not None and recipient.reply_conversation_id == conversation.pk,
                          OptOut.objects.filter(line=line, phone=phone(world, who)).exists())
        return found

    assert linked("81") == linked("71")
    assert linked("81") == {"ana": (promo.pk, promo.pk, True, False), "beto": (promo.pk, promo.pk, True, False),
                            "caro": (promo.pk, promo.pk, True, True),
                            "dani": (line.campaign_id, line.campaign_id, False, False),
                            "eva": (line.campaign_id, line.campaign_id, False, False)}
    assert bulk_recipient_reads(batch) == 1


def test_rows_inserted_set_based_read_back_as_bulk_create_wrote_them(demo: dict[str, Any]) -> None:
    """insert_rows (one INSERT … FROM unnest on PostgreSQL) stores every column as Django's
    bulk_create does, and gives each object its own row's id."""
    line = demo["sales_line"]
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491155550999")
    sent_at = datetime.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC)

    def message(n: int, suffix: str) -> Message:
        return Message(conversation=conversation, line=line, direction=Message.Direction.INBOUND,
                       kind=Message.Kind.LOCATION if n % 2 else Message.Kind.TEXT,
                       body=f"ñandú <b>'{n}'</b> \"{{}}\" \\ {suffix}", payload={"n": n, "list": [1, "ü", None]},
                       media_filename="" if n % 2 else "recibo.pdf", provider_message_id=f"wamid.rows-{suffix}-{n}",
                       status=Message.Status.RECEIVED, provider_timestamp=sent_at if n % 2 else None)

    django_made = [message(n, "django") for n in range(3)]
    Message.objects.bulk_create(django_made)
    ours = [message(n, "ours") for n in range(3)]
    insert_rows(ours)
    assert [m.pk for m in ours] == sorted(m.pk for m in ours) and all(not m._state.adding for m in ours)
    skipped = {"id", "created_at", "body", "provider_message_id"}
    for theirs, mine in zip(django_made, ours, strict=True):
        stored_theirs = Message.objects.get(pk=theirs.pk)
        stored_mine = Message.objects.get(pk=mine.pk)
        assert stored_mine.provider_message_id == mine.provider_message_id  # its own row's id
        assert stored_mine.body == mine.body
        assert stored_mine.created_at is not None and stored_mine.created_at == mine.created_at
        for f in Message._meta.concrete_fields:
            if f.name not in skipped:
                assert getattr(stored_mine, f.attname) == getattr(stored_theirs, f.attname), f.name
    audit = [AuditEntry(kind=AuditEntry.Kind.CREATED, conversation=conversation, data={"via": "inbound", "x": [1.5]})]
    insert_rows(audit)
    assert AuditEntry.objects.get(pk=audit[0].pk).data == {"via": "inbound", "x": [1.5]}
