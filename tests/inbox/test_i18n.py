"""Business-rule errors speak the agent's language (Accept-Language / the language cookie)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from django.utils import timezone, translation

from conversa.inbox.models import Conversation


@pytest.fixture(autouse=True)
def _back_to_default_language() -> Iterator[None]:
    """LocaleMiddleware activates the request's language on this thread: leave it as found."""
    yield
    translation.deactivate()


def test_capture_and_window_errors_follow_the_request_language(api, customer_says):
    spanish = {"HTTP_ACCEPT_LANGUAGE": "es"}
    taken = customer_says("Hola")
    assert api("agent2").post(f"/api/v1/conversations/{taken.pk}/capture/").status_code == 200

    lost = api("agent1").post(f"/api/v1/conversations/{taken.pk}/capture/", **spanish)
    assert lost.status_code == 409
    assert lost.json()["message"] == "Ya la tomó Martín Pérez."
    lost = api("agent1").post(f"/api/v1/conversations/{taken.pk}/capture/")
    assert lost.status_code == 409
    assert lost.json()["message"] == "Already taken by Martín Pérez."

    mine = customer_says("Hola", phone="+5491155550002")
    assert api("agent1").post(f"/api/v1/conversations/{mine.pk}/capture/").status_code == 200
    Conversation.objects.filter(pk=mine.pk).update(
        last_inbound_at=timezone.now() - datetime.timedelta(hours=24, minutes=1))
    url = f"/api/v1/conversations/{mine.pk}/messages/"
    refused = api("agent1").post(url, {"text": "hola"}, format="json", **spanish)
    assert refused.status_code == 422
    assert "Pasaron más de 24 horas" in refused.json()["message"]
    assert "template aprobado" in refused.json()["message"]
    refused = api("agent1").post(url, {"text": "hola"}, format="json")
    assert refused.status_code == 422
    assert "More than 24 hours have passed" in refused.json()["message"]
    assert "only an approved template can be sent now" in refused.json()["message"]
    assert mine.messages.filter(direction="out").count() == 0
