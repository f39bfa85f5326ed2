"""Event payloads are built by plain functions (the webhook worker's hot path, issue 10): they must
carry exactly what ConversationSummarySerializer / MessageSummarySerializer (the documented shape)
carry, for varied rows and in any active time zone."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from conversa.contacts.models import Contact
from conversa.inbox.events import conversation_payload, message_payload
from conversa.inbox.models import Conversation, Message
from conversa.inbox.serializers import conversation_summary, message_summary

NOW = timezone.now()


def _as_json(data: Any) -> Any:
    return json.loads(JSONRenderer().render(data))


def _same(built: dict[str, Any], documented: dict[str, Any]) -> None:
    assert list(built) == list(documented), "same fields, same order"
    assert built == documented
    assert _as_json(built) == _as_json(documented)


def test_conversation_payloads_equal_the_summary_serializer(demo):
    line = demo["sales_line"]
    agent = get_user_model().objects.get(username="agent1")
    contact = Contact.objects.create(database=line.campaign.contact_database, phone="+5491170009999",
                                     first_name="Zoë <b>", last_name="O'Brien")
    rows = [
        Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491170000001"),
        Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491170000002",
                                    customer_profile_name="Ana \"2\" <i>", contact=contact,
                                    status=Conversation.Status.ATTENDED, agent=agent, attended_at=NOW,
                                    last_message_at=NOW - timedelta(minutes=3), last_message_preview="hola & <b>",
                                    unread_count=4),
        Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="",
                                    customer_user_id="BR.123", customer_username="ana_ig",
                                    status=Conversation.Status.CLOSED, closed_at=NOW,
                                    last_message_at=NOW.replace(microsecond=0)),
    ]
    for conversation in rows:
        _same(conversation_payload(conversation), conversation_summary(conversation))
        fresh = Conversation.objects.get(pk=conversation.pk)
        _same(conversation_payload(fresh), conversation_summary(fresh))
        with timezone.override("America/Argentina/Buenos_Aires"):
            _same(conversation_payload(fresh), conversation_summary(fresh))
    assert conversation_payload(rows[1])["customer_name"] == "Zoë <b> O'Brien"


def test_message_payloads_equal_the_summary_serializer(demo):
    line = demo["sales_line"]
    conversation = Conversation.objects.create(line=line, campaign=line.campaign, customer_phone="+5491170000001")
    rows = [
        Message.objects.create(conversation=conversation, line=line, direction="in", body="hola <b>",
                               provider_message_id="wamid.1"),
        Message.objects.create(conversation=conversation, line=line, direction="out", kind="template",
                               status=Message.Status.UNCONFIRMED, resend_offered_at=NOW),
        Message.objects.create(conversation=conversation, line=line, direction="out",
                               status=Message.Status.UNCONFIRMED),
        Message.objects.create(conversation=conversation, line=line, direction="out", status=Message.Status.FAILED,
                               error_code="131047", error_title="Re-engagement"),
        Message.objects.create(conversation=conversation, line=line, direction="in", body="editado",
                               edited_at=NOW, deleted_at=NOW - timedelta(seconds=5)),
    ]
    image = Message(conversation=conversation, line=line, direction="in", kind="image", media_mime="image/png",
                    media_filename="a <b>.png")
    image.media.save("a.png", ContentFile(b"\x89PNG"), save=False)
    image.save()
    rows.append(image)
    for message in rows:
        _same(message_payload(message), message_summary(message))
        fresh = Message.objects.get(pk=message.pk)
        _same(message_payload(fresh), message_summary(fresh))
        with timezone.override("America/Argentina/Buenos_Aires"):
            _same(message_payload(fresh), message_summary(fresh))
    assert {message_payload(m)["resend_offered"] for m in rows} == {True, False}
    assert message_payload(image)["media_url"]
