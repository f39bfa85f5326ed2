"""Meta media downloads (two steps, retried), template sync (paging), connection check, and
the sweep that finishes webhook events a crash left unprocessed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conftest import drain_tasks
from conversa.core.worker import sweep
from conversa.inbox.models import Message
from conversa.whatsapp import intake, services
from conversa.whatsapp.adapters import get_adapter
from conversa.whatsapp.adapters.base import SendError
from conversa.whatsapp.models import Line, MessageTemplate, WebhookEvent
from fakes.meta import VERSION, MetaFake
from fakes.server import Reply

from .conftest import META_TOKEN, META_WABA_ID, meta_payload, post_meta

IMAGE_ID = "1003383421387256"
JPEG = b"\xff\xd8\xff\xe0 a real photo"


def test_media_is_downloaded_in_two_steps_and_stored(meta_fake: MetaFake, meta_line: Line) -> None:
    meta_fake.media[IMAGE_ID] = (JPEG, "image/jpeg")
    post_meta(meta_line, meta_payload("messages_image"))
    drain_tasks()
    message = Message.objects.get(line=meta_line)
    assert message.media.read() == JPEG
    # A random name with the sniffed type's extension.
    assert re.fullmatch(r"media/\d{4}/\d{2}/[0-9a-f]{32}\.jpg", message.media.name), message.media.name
    assert message.media_provider_id == ""
    lookup, download = [r for r in meta_fake.requests if r.method == "GET"]
    assert lookup.path == f"/{VERSION}/{IMAGE_ID}"
    assert download.path == f"/lookaside/{IMAGE_ID}"
    # Both steps carry the token: Meta's media URLs are not public.
    assert lookup.headers["authorization"] == download.headers["authorization"] == f"Bearer {META_TOKEN}"


@pytest.mark.parametrize("step", ["lookup", "download"])
def test_a_transient_503_is_retried_without_losing_the_message(meta_fake: MetaFake, meta_line: Line,
                                                              step: str) -> None:
    meta_fake.media[IMAGE_ID] = (JPEG, "image/jpeg")
    path = f"/{VERSION}/{IMAGE_ID}" if step == "lookup" else f"/lookaside/{IMAGE_ID}"
    meta_fake.script("GET", path, Reply(503, {"error": {"message": "Service temporarily unavailable",
                                                       "code": 2, "is_transient": True}}))
    post_meta(meta_line, meta_payload("messages_image"))
    drain_tasks()
    message = Message.objects.get(line=meta_line)
    # The text (caption) and the conversation are there at once; only the file is pending.
    assert message.body == "Foto del producto"
    assert not message.media
    assert message.media_provider_id == IMAGE_ID
    assert message.payload["media_attempts"] == 1
    assert DBTaskResult.objects.filter(status="READY", run_after__gt=timezone.now()).count() == 1
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    drain_tasks()
    message.refresh_from_db()
    assert message.media.read() == JPEG
    assert message.body == "Foto del producto"


def test_expired_media_is_not_retried_forever(meta_fake: MetaFake, meta_line: Line) -> None:
    post_meta(meta_line, meta_payload("messages_image"))  # the fake does not know this media: 404
    drain_tasks()
    message = Message.objects.get(line=meta_line)
    assert message.body == "Foto del producto" and not message.media
    assert "gave up" in DBTaskResult.objects.filter(task_path__endswith="fetch_inbound_media").get().return_value
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_template_sync_follows_paging_next(meta_fake: MetaFake, meta_line: Line) -> None:
    assert services.sync_templates(meta_line) == 4
    pages = meta_fake.requests_to("GET", f"/{VERSION}/{META_WABA_ID}/message_templates")
    assert len(pages) == 2 and pages[1].query["after"] == "QVFIUjRm"
    templates = {t.name: t for t in MessageTemplate.objects.filter(line=meta_line)}
    assert set(templates) == {"order_update", "promo_julio", "ticket_closed", "old_promo"}
    order = templates["order_update"]
    assert (order.provider_template_id, order.language, order.category) == ("1190000000000001", "es", "UTILITY")
    assert order.status == MessageTemplate.Status.APPROVED
    assert (order.header, order.body, order.footer) == ("Tu pedido", "Hola {{1}}, tu pedido {{2}} salió", "Conversa")
    assert [b["text"] for b in order.buttons] == ["Gracias", "Seguir envío"]
    assert order.param_count == 2
    assert templates["promo_julio"].status == MessageTemplate.Status.PENDING
    assert templates["promo_julio"].header == "[image]"
    assert templates["ticket_closed"].status == MessageTemplate.Status.REJECTED
    assert templates["ticket_closed"].status_reason == "INVALID_FORMAT"
    assert templates["old_promo"].status == MessageTemplate.Status.PAUSED
    # Syncing again updates in place.
    assert services.sync_templates(meta_line) == 4
    assert MessageTemplate.objects.filter(line=meta_line).count() == 4


def test_template_sync_with_a_bad_token_raises(meta_fake: MetaFake, meta_line: Line) -> None:
    meta_line.provider.config["access_token"] = "expired"
    meta_line.provider.save()
    with pytest.raises(SendError) as error:
        services.sync_templates(Line.objects.get(pk=meta_line.pk))
    assert error.value.code == "190" and not error.value.retryable
    assert not MessageTemplate.objects.filter(line=meta_line).exists()


def test_check_connection(meta_fake: MetaFake, meta_line: Line) -> None:
    result = get_adapter(meta_line).check_connection()
    assert "Conversa Ventas" in result and "GREEN" in result


def test_check_connection_when_meta_is_down(meta_fake: MetaFake, meta_line: Line) -> None:
    meta_fake.script("GET", r"/v21\.0/\d+", Reply(500, {"error": {"message": "down", "code": 2}}))
    with pytest.raises(SendError) as error:
        get_adapter(meta_line).check_connection()
    assert error.value.retryable


def test_a_stored_event_left_unprocessed_by_a_crash_is_picked_up_by_the_sweep(meta_line: Line,
                                                                              settings: Any) -> None:
    settings.CONVERSA_WEBHOOK_SWEEP_AFTER = 0
    # The crash: the event was stored but its processing task never ran (lost with the process).
    store_only = meta_payload("messages_text")
    event, created = intake.store_webhook(meta_line, store_only, {"content-type": "application/json"})
    assert created
    DBTaskResult.objects.all().delete()
    assert not Message.objects.exists()
    assert sweep()["webhook_events"] == 1
    drain_tasks()
    event.refresh_from_db()
    assert event.processed_at is not None
    assert Message.objects.filter(line=meta_line).count() == 1
    assert sweep()["webhook_events"] == 0  # nothing left to redo
    assert WebhookEvent.objects.count() == 1
