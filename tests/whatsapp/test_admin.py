"""The back office: provider/line forms with named credential fields, connection check and
template sync actions, read-only webhook events."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import drain_tasks
from conversa.whatsapp.models import Line, MessageTemplate, Provider, WebhookEvent
from fakes.meta import MetaFake
from fakes.server import Reply

from .conftest import META_APP_SECRET, META_TOKEN, make_campaign, meta_payload, post_meta


@pytest.fixture
def admin_client(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_provider_form_shows_secrets_as_password_inputs_and_saves_them_into_config(admin_client: Client) -> None:
    page = admin_client.get("/admin/whatsapp/provider/add/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="password" name="cfg_access_token"' in html and 'type="password" name="cfg_app_secret"' in html
    assert "X-Hub-Signature-256" in html  # the help text says what the app secret is for
    response = admin_client.post("/admin/whatsapp/provider/add/", {
        "name": "Meta prod", "kind": "meta", "webhook_secret": "", "cfg_access_token": "EAAG-token",
        "cfg_app_secret": "s3cret", "cfg_business_id": "123", "cfg_api_key": "", "cfg_api_url": ""})
    assert response.status_code == 302, response.content
    provider = Provider.objects.get(name="Meta prod")
    assert provider.config == {"access_token": "EAAG-token", "app_secret": "s3cret", "business_id": "123"}


def test_line_page_shows_the_callback_url(admin_client: Client, meta_line: Line) -> None:
    page = admin_client.get(f"/admin/whatsapp/line/{meta_line.pk}/change/")
    assert page.status_code == 200
    assert f"/webhooks/meta/{meta_line.pk}/" in page.content.decode()
    assert 'name="cfg_phone_number_id"' in page.content.decode()


def test_check_connection_action(admin_client: Client, meta_fake: MetaFake, meta_line: Line) -> None:
    response = admin_client.post("/admin/whatsapp/line/", {
        "action": "check_connection", "_selected_action": [meta_line.pk]}, follow=True)
    assert any("Connected to Meta: Conversa Ventas" in m for m in _messages(response))
    meta_fake.script("GET", r"/v21\.0/\d+", Reply(401, {"error": {"message": "Invalid OAuth access token.",
                                                                  "code": 190}}))
    response = admin_client.post("/admin/whatsapp/line/", {
        "action": "check_connection", "_selected_action": [meta_line.pk]}, follow=True)
    assert any("Access token expired or invalid" in m for m in _messages(response))


def test_sync_templates_actions(admin_client: Client, meta_fake: MetaFake, meta_line: Line) -> None:
    response = admin_client.post("/admin/whatsapp/line/", {
        "action": "sync_templates", "_selected_action": [meta_line.pk]}, follow=True)
    assert any("4 template(s) synced" in m for m in _messages(response))
    assert MessageTemplate.objects.filter(line=meta_line).count() == 4
    one = MessageTemplate.objects.filter(line=meta_line).first()
    assert one is not None
    response = admin_client.post("/admin/whatsapp/messagetemplate/", {
        "action": "sync_from_provider", "_selected_action": [one.pk]}, follow=True)
    assert any("4 template(s) synced" in m for m in _messages(response))
    listing = admin_client.get("/admin/whatsapp/messagetemplate/", {"status__exact": "approved"})
    assert "order_update" in listing.content.decode() and "old_promo" not in listing.content.decode()


def test_webhook_events_are_listed_read_only(admin_client: Client, meta_line: Line) -> None:
    post_meta(meta_line, meta_payload("messages_text"))
    drain_tasks()
    event = WebhookEvent.objects.get()
    listing = admin_client.get("/admin/whatsapp/webhookevent/", {"processed": "yes"})
    assert listing.status_code == 200 and f"/admin/whatsapp/webhookevent/{event.pk}/" in listing.content.decode()
    assert admin_client.get("/admin/whatsapp/webhookevent/", {"processed": "no"}).context["cl"].result_count == 0
    detail = admin_client.get(f"/admin/whatsapp/webhookevent/{event.pk}/change/")
    assert detail.status_code == 200 and "Hola, quiero saber el precio" in detail.content.decode()
    assert admin_client.get("/admin/whatsapp/webhookevent/add/").status_code == 403
    # Credentials never leak into what is stored with the event.
    assert META_TOKEN not in str(event.headers) and META_APP_SECRET not in str(event.headers)


@pytest.mark.parametrize(("kind", "given", "missing"), [
    ("meta", {"cfg_access_token": "EAAG-token"}, ["cfg_app_secret"]),
    ("gupshup", {}, ["cfg_api_key"]),
])
def test_provider_form_requires_what_its_adapter_declares(admin_client: Client, kind: str, given: dict[str, str],
                                                          missing: list[str]) -> None:
    response = admin_client.post("/admin/whatsapp/provider/add/", {"name": "New", "kind": kind, **given})
    assert response.status_code == 200  # the form again, with the errors
    errors = response.context["adminform"].form.errors
    assert sorted(errors) == missing
    assert not Provider.objects.filter(name="New").exists()


def test_sandbox_provider_needs_no_config(admin_client: Client) -> None:
    response = admin_client.post("/admin/whatsapp/provider/add/", {"name": "Demo 2", "kind": "sandbox"})
    assert response.status_code == 302, response.content
    assert Provider.objects.get(name="Demo 2").config == {}


def test_line_form_requires_the_fields_of_its_providers_kind(admin_client: Client, meta_line: Line,
                                                             gupshup_line: Line) -> None:
    base = {"name": "Second", "number": "+15550100099", "campaign": make_campaign("Second number").pk,
            "out_of_hours_action": "close", "active": "on"}
    on_meta = admin_client.post("/admin/whatsapp/line/add/", {**base, "provider": meta_line.provider_id})
    assert sorted(on_meta.context["adminform"].form.errors) == ["cfg_phone_number_id"]
    on_gupshup = admin_client.post("/admin/whatsapp/line/add/", {**base, "provider": gupshup_line.provider_id})
    assert sorted(on_gupshup.context["adminform"].form.errors) == ["cfg_app_name"]
    saved = admin_client.post("/admin/whatsapp/line/add/", {**base, "provider": gupshup_line.provider_id,
                                                             "cfg_app_name": "Second app"})
    assert saved.status_code == 302, saved.content
    assert Line.objects.get(name="Second").config == {"app_name": "Second app"}


def test_gupshup_line_page_shows_how_the_secret_travels(admin_client: Client, gupshup_line: Line) -> None:
    page = admin_client.get(f"/admin/whatsapp/line/{gupshup_line.pk}/change/").content.decode()
    assert f"/webhooks/gupshup/{gupshup_line.pk}/?token=&lt;webhook secret&gt;" in page
