"""Meta and GupShup lines wired to local fakes of their APIs, and webhook helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from conversa.campaigns.models import Campaign
from conversa.contacts.models import ContactDatabase
from conversa.core.media import storage_name_from_link
from conversa.whatsapp.adapters.base import hmac_sha256_signature
from conversa.whatsapp.models import Line, Provider
from fakes.gupshup import GupshupFake
from fakes.meta import VERSION, MetaFake
from fakes.server import fixture_text

META_TOKEN = "EAAGm0PX4ZCpsBAKfake"
META_APP_SECRET = "meta-app-secret"
META_VERIFY_TOKEN = "verify-me-please"
META_PHONE_NUMBER_ID = "1122334455667"
META_WABA_ID = "102290129340398"
GUPSHUP_API_KEY = "gupshup-api-key"
GUPSHUP_SECRET = "gupshup-callback-secret"
GUPSHUP_APP_ID = "bf9ee64c-3d4d-4ac4-9d1a-732e577007c4"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def links_to(url: str, message: Any) -> bool:
    """`url` is an absolute signed link of ours to exactly this message's stored file."""
    return url.startswith(django_settings.PUBLIC_BASE_URL + "/media/links/") and (
        storage_name_from_link(url) == message.media.name != "")


def make_campaign(name: str) -> Campaign:
    campaign = Campaign.objects.create(name=name, contact_database=ContactDatabase.objects.get(name="Sales contacts"))
    campaign.agents.add(*get_user_model().objects.filter(username__in=["agent1", "agent2"]))
    return campaign


@pytest.fixture
def meta_fake(settings: Any) -> Iterator[MetaFake]:
    with MetaFake(access_token=META_TOKEN, phone_number_id=META_PHONE_NUMBER_ID, waba_id=META_WABA_ID) as fake:
        settings.META_GRAPH_BASE_URL = fake.url
        settings.META_GRAPH_VERSION = VERSION
        settings.PROVIDER_HTTP_TIMEOUT = 5
        # Its media links point at itself on 127.0.0.1: exempt from the SSRF guard (that host:port only).
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [*settings.CONVERSA_FETCH_ALLOWED_HOSTS, fake.url.split("://")[1]]
        yield fake


@pytest.fixture
def meta_line(demo: dict[str, Any]) -> Line:
    provider = Provider.objects.create(name="Meta test", kind=Provider.Kind.META, config={
        "access_token": META_TOKEN, "app_secret": META_APP_SECRET, "business_id": "555000111"})
    return Line.objects.create(name="Meta line", number="+15550100010", provider=provider,
                               campaign=make_campaign("Meta campaign"), config={
                                   "phone_number_id": META_PHONE_NUMBER_ID, "waba_id": META_WABA_ID,
                                   "verify_token": META_VERIFY_TOKEN})


@pytest.fixture
def gupshup_fake(settings: Any) -> Iterator[GupshupFake]:
    with GupshupFake(api_key=GUPSHUP_API_KEY, app_id=GUPSHUP_APP_ID) as fake:
        settings.GUPSHUP_BASE_URL = fake.url
        settings.GUPSHUP_PARTNER_BASE_URL = fake.url
        settings.PROVIDER_HTTP_TIMEOUT = 5
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [*settings.CONVERSA_FETCH_ALLOWED_HOSTS, fake.url.split("://")[1]]
        yield fake


@pytest.fixture
def gupshup_line(demo: dict[str, Any]) -> Line:
    provider = Provider.objects.create(name="GupShup test", kind=Provider.Kind.GUPSHUP,
                                       config={"api_key": GUPSHUP_API_KEY}, webhook_secret=GUPSHUP_SECRET)
    return Line.objects.create(name="GupShup line", number="+15550100020", provider=provider,
                               campaign=make_campaign("GupShup campaign"),
                               config={"app_name": "ConversaTest", "app_id": GUPSHUP_APP_ID})


def as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def post_meta(line: Line, payload: Any, *, secret: str | None = META_APP_SECRET,
              header: str | None = None) -> Any:
    """POST a webhook the way Meta does: raw bytes signed with the app secret."""
    body = as_bytes(payload)
    extra = {}
    if header is not None:
        extra["HTTP_X_HUB_SIGNATURE_256"] = header
    elif secret is not None:
        extra["HTTP_X_HUB_SIGNATURE_256"] = hmac_sha256_signature(secret=secret, body=body)
    return APIClient().post(f"/webhooks/meta/{line.pk}/", data=body, content_type="application/json", **extra)


def post_gupshup(line: Line, payload: Any, *, token: str | None = GUPSHUP_SECRET, via: str = "query") -> Any:
    body = as_bytes(payload)
    url = f"/webhooks/gupshup/{line.pk}/"
    extra = {}
    if token is not None and via == "query":
        url += f"?token={token}"
    elif token is not None:
        extra["HTTP_X_CONVERSA_TOKEN"] = token
    return APIClient().post(url, data=body, content_type="application/json", **extra)


def meta_payload(name: str, **subs: str) -> bytes:
    return fixture_text("meta", name, **subs).encode()


def gupshup_payload(name: str, **subs: str) -> bytes:
    return fixture_text("gupshup", name, **subs).encode()
