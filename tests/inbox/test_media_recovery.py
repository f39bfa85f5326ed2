"""Issue 8 item 8: a customer's attachment is never left without a file for good. Downloads whose
task vanished are swept and retried with back-off (one live task per message); a final failure
tells the agent to ask for a resend and offers Retry (audited)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django_tasks_db.models import DBTaskResult
from tests.whatsapp.conftest import _media_root, meta_fake, meta_line, meta_payload, post_meta  # noqa: F401

from conftest import drain_tasks
from conversa.core.worker import sweep
from conversa.inbox.models import AuditEntry, Message
from conversa.whatsapp.models import Line
from conversa.whatsapp.services import process_webhook_event
from fakes.meta import MetaFake

MEDIA_ID = "1003383421387256"  # the image of tests/fixtures/meta/messages_image.json
FETCH_TASK = "conversa.inbox.tasks.fetch_inbound_media"


def _fetch_tasks(message: Message) -> int:
    return sum(1 for row in DBTaskResult.objects.filter(task_path=FETCH_TASK)
               if row.args_kwargs["args"][0] == message.pk and row.status in ("READY", "RUNNING"))


def test_a_download_whose_task_vanished_is_swept_once_and_completed(meta_line: Line, meta_fake: MetaFake,  # noqa: F811
                                                                     settings: Any):
    settings.CONVERSA_WEBHOOK_SWEEP_AFTER = 0
    meta_fake.media[MEDIA_ID] = (b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")
    response = post_meta(meta_line, meta_payload("messages_image"))
    assert response.status_code == 200, response.content
    DBTaskResult.objects.all().delete()  # the webhook's own task: run here instead
    process_webhook_event(response.json()["event"])
    message = Message.objects.get(provider_message_id="wamid.IMAGE0001")
    assert _fetch_tasks(message) == 1
    # The enqueue is lost (a crash after the commit, a queue row gone): nothing would fetch it.
    DBTaskResult.objects.filter(task_path=FETCH_TASK).delete()

    # Back-off respected: an attempt whose retry time has not come is left alone.
    Message.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at.replace(year=2999))
    assert sweep()["media_downloads"] == 0
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert sweep()["media_downloads"] == 1
    assert sweep()["media_downloads"] == 0  # its task is waiting: at most one live task per message
    assert _fetch_tasks(message) == 1
    drain_tasks()
    message.refresh_from_db()
    assert message.media and message.media.read() == b"\xff\xd8\xff\xe0 jpeg"
    assert message.media_provider_id == "" and message.next_attempt_at is None
    assert sweep()["media_downloads"] == 0


def test_a_download_that_kept_failing_is_given_up_not_swept_forever(meta_line: Line, meta_fake: MetaFake,  # noqa: F811
                                                                     settings: Any):
    """An attempt is counted before it starts, so a download that kills its worker every time
    still ends as a visible failure after CONVERSA_SEND_MAX_ATTEMPTS attempts."""
    settings.CONVERSA_WEBHOOK_SWEEP_AFTER = 0
    meta_fake.media[MEDIA_ID] = (b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")
    response = post_meta(meta_line, meta_payload("messages_image"))
    assert response.status_code == 200
    DBTaskResult.objects.all().delete()
    process_webhook_event(response.json()["event"])
    message = Message.objects.get(provider_message_id="wamid.IMAGE0001")
    Message.objects.filter(pk=message.pk).update(payload={**message.payload, "media_attempts": 6,
                                                          "media_error": "worker lost"})
    drain_tasks()
    message.refresh_from_db()
    assert message.payload["media_failed"] is True and not message.media
    assert sweep()["media_downloads"] == 0


def test_a_failed_attachment_asks_for_a_resend_and_retry_fetches_it(meta_line: Line, meta_fake: MetaFake):  # noqa: F811
    response = post_meta(meta_line, meta_payload("messages_image"))  # the fake has no such media: 404
    assert response.status_code == 200
    drain_tasks()
    message = Message.objects.get(provider_message_id="wamid.IMAGE0001")
    assert message.payload.get("media_failed") is True and not message.media
    conversation = message.conversation

    agent = Client()
    agent.force_login(get_user_model().objects.get(username="agent1"))
    thread = agent.get(f"/console/c/{conversation.pk}/messages/").content.decode()
    assert "Attachment could not be downloaded — ask the customer to resend" in thread
    retry_url = f"/console/c/{conversation.pk}/media/{message.pk}/retry/"
    assert f'hx-post="{retry_url}"' in thread

    outsider = Client()
    outsider.force_login(get_user_model().objects.get(username="agent3"))  # not in the Meta campaign
    assert outsider.post(retry_url).status_code == 404
    assert agent.post(f"/console/c/{conversation.pk}/media/{message.pk + 999}/retry/").status_code == 404

    meta_fake.media[MEDIA_ID] = (b"\xff\xd8\xff\xe0 back", "image/jpeg")  # the customer's file is there now
    assert agent.post(retry_url).status_code == 204
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.MEDIA_RETRIED)
    assert entry.conversation_id == conversation.pk and entry.actor.username == "agent1"
    assert entry.data == {"message": message.pk}
    drain_tasks()
    message.refresh_from_db()
    assert message.media and message.media.read() == b"\xff\xd8\xff\xe0 back"
    assert "media_failed" not in message.payload
    assert "ask the customer to resend" not in agent.get(f"/console/c/{conversation.pk}/messages/").content.decode()
    conflict = agent.post(retry_url)  # nothing left to retry
    assert conflict.status_code == 409
    assert json.loads(conflict.headers["HX-Trigger"])["conversa:error"]["code"]


def test_the_failure_is_in_spanish(meta_line: Line, meta_fake: MetaFake):  # noqa: F811
    assert post_meta(meta_line, meta_payload("messages_image")).status_code == 200
    drain_tasks()
    message = Message.objects.get(provider_message_id="wamid.IMAGE0001")
    agent = Client(headers={"Accept-Language": "es"})
    agent.force_login(get_user_model().objects.get(username="agent1"))
    thread = agent.get(f"/console/c/{message.conversation_id}/messages/").content.decode()
    assert "No se pudo descargar el adjunto — pedile al cliente que lo reenvíe" in thread
    assert "Reintentar" in thread
