"""Bodies that can never be stored leave a bounded trace for admins (issue 8 item 7): a sample
(first KBs, headers without secret values, reason, line, time), capped per line per window, pruned
by the worker's sweep, read-only in the admin."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from conversa.core.worker import sweep
from conversa.whatsapp import rejections
from conversa.whatsapp.adapters.base import hmac_sha256_signature
from conversa.whatsapp.models import Line, RejectedWebhook, WebhookEvent

from .conftest import META_APP_SECRET, post_meta


def test_invalid_utf8_from_meta_is_a_400_with_a_sample_and_no_secret(meta_line: Line) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": [{"x": "\xff\xfe caf\xe9"}]}' + b" " * 10_000
    response = post_meta(meta_line, body)
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    sample = RejectedWebhook.objects.get()
    assert sample.line == meta_line
    assert sample.status_code == 400 and sample.verified
    assert sample.reason
    assert sample.size == len(body)
    assert bytes(sample.body_sample) == body[:rejections.SAMPLE_BYTES]
    signature = hmac_sha256_signature(secret=META_APP_SECRET, body=body)
    assert sample.headers["x-hub-signature-256"] == rejections.REDACTED
    assert signature not in str(sample.headers)
    assert sample.headers["content-type"] == "application/json"
    assert abs(sample.received_at - timezone.now()) < datetime.timedelta(minutes=1)


def test_a_body_without_anything_usable_is_sampled(demo: dict[str, Any]) -> None:
    line = demo["sales_line"]
    response = Client().post(f"/webhooks/sandbox/{line.pk}/", data=b'{"text": "no id, no sender"}',
                             content_type="application/json", HTTP_AUTHORIZATION="Bearer s3cr3t",
                             HTTP_COOKIE="sessionid=abc")
    assert response.status_code == 400
    sample = RejectedWebhook.objects.get()
    assert bytes(sample.body_sample) == b'{"text": "no id, no sender"}'
    assert sample.headers["authorization"] == rejections.REDACTED
    assert sample.headers["cookie"] == rejections.REDACTED
    assert "s3cr3t" not in str(sample.headers) and "abc" not in str(sample.headers)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_limit_is_a_413_with_its_size_and_reason(demo: dict[str, Any]) -> None:
    line = demo["sales_line"]
    response = Client().post(f"/webhooks/sandbox/{line.pk}/", data=b'{"id": "m1", "text": "' + b"x" * 5000 + b'"}',
                             content_type="application/json")
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0
    sample = RejectedWebhook.objects.get()
    assert (sample.status_code, sample.verified, bytes(sample.body_sample)) == (413, False, b"")
    assert sample.size > 1000
    assert "1000" in sample.reason


def test_samples_are_capped_per_line_per_window_and_the_rest_dropped(demo: dict[str, Any], meta_line: Line) -> None:
    sandbox = demo["sales_line"]
    for n in range(rejections.MAX_PER_LINE_PER_WINDOW + 15):
        response = Client().post(f"/webhooks/sandbox/{sandbox.pk}/", data=f"not json {n}",
                                 content_type="application/json")
        assert response.status_code == 400  # every one still answered
    assert RejectedWebhook.objects.filter(line=sandbox).count() == rejections.MAX_PER_LINE_PER_WINDOW
    # Another line's quota is its own.
    assert post_meta(meta_line, b"not json").status_code == 400
    assert RejectedWebhook.objects.filter(line=meta_line).count() == 1
    # Once the window has passed, samples are kept again.
    RejectedWebhook.objects.filter(line=sandbox).update(
        received_at=timezone.now() - rejections.WINDOW - datetime.timedelta(seconds=1))
    assert Client().post(f"/webhooks/sandbox/{sandbox.pk}/", data="not json again",
                         content_type="application/json").status_code == 400
    assert RejectedWebhook.objects.filter(line=sandbox).count() == rejections.MAX_PER_LINE_PER_WINDOW + 1


def test_the_sweep_prunes_samples_past_the_retention(demo: dict[str, Any]) -> None:
    line = demo["sales_line"]
    for n in range(3):
        Client().post(f"/webhooks/sandbox/{line.pk}/", data=f"not json {n}", content_type="application/json")
    old = RejectedWebhook.objects.order_by("pk")[:2]
    RejectedWebhook.objects.filter(pk__in=[r.pk for r in old]).update(
        received_at=timezone.now() - rejections.RETENTION - datetime.timedelta(minutes=1))
    assert sweep()["rejected_webhooks"] == 2
    assert RejectedWebhook.objects.count() == 1


@pytest.fixture
def admin_client(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def test_admin_shows_samples_read_only_and_escaped(admin_client: Client, demo: dict[str, Any]) -> None:
    line = demo["sales_line"]
    Client().post(f"/webhooks/sandbox/{line.pk}/", data=b"<script>alert(1)</script>\xff",
                  content_type="application/json")
    sample = RejectedWebhook.objects.get()
    listing = admin_client.get("/admin/whatsapp/rejectedwebhook/")
    assert listing.status_code == 200
    page = admin_client.get(f"/admin/whatsapp/rejectedwebhook/{sample.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\xff" in html
    assert "<script>alert(1)" not in html
    assert admin_client.get("/admin/whatsapp/rejectedwebhook/add/").status_code == 403
    response = admin_client.post(f"/admin/whatsapp/rejectedwebhook/{sample.pk}/change/", {"reason": "edited"})
    assert response.status_code == 403
    assert RejectedWebhook.objects.get().reason == sample.reason
