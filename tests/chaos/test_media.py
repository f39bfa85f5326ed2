"""Issue 8 item 8 with real processes: a worker killed mid-download (the fake Meta stalls the
media bytes) leaves no message without its file — another worker finishes the download."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

import httpx
import pytest
from tests.chaos.conftest import Deployment, poll

from conversa.whatsapp.adapters.base import hmac_sha256_signature
from fakes.meta import VERSION, MetaFake
from fakes.server import Recorded, Reply, fixture_text

pytestmark = pytest.mark.postgres_only
TOKEN, APP_SECRET, PHONE_NUMBER_ID, MEDIA_ID = "chaos-token", "chaos-secret", "1122334455667", "1003383421387256"
JPEG = b"\xff\xd8\xff\xe0 chaos jpeg"


class StallingMeta(MetaFake):
    """Meta whose first media download never answers until released (a worker hangs in it)."""

    def __init__(self) -> None:
        super().__init__(access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID, waba_id="1")
        self.release = threading.Event()
        self._stalled = False

    def _media_bytes(self, request: Recorded, match: re.Match[str]) -> Reply:
        if not self._stalled:
            self._stalled = True
            self.release.wait(60)
        return super()._media_bytes(request, match)


def test_a_worker_killed_mid_download_leaves_no_message_without_its_file(deployment: Deployment, tmp_path: Path):
    with StallingMeta() as fake:
        fake.media[MEDIA_ID] = (JPEG, "image/jpeg")
        provider_id = deployment.sql(
            "INSERT INTO whatsapp_provider (name, kind, config, webhook_secret, created_at) "
            "VALUES ('Meta chaos', 'meta', %s, '', now()) RETURNING id",
            json.dumps({"access_token": TOKEN, "app_secret": APP_SECRET}))[0][0]
        deployment.sql("UPDATE whatsapp_line SET provider_id = %s, config = %s WHERE id = %s", provider_id,
                       json.dumps({"phone_number_id": PHONE_NUMBER_ID}), deployment.line_id)
        env = {"META_GRAPH_BASE_URL": fake.url, "META_GRAPH_VERSION": VERSION, "PROVIDER_HTTP_TIMEOUT": "60",
               "CONVERSA_FETCH_ALLOWED_HOSTS": fake.url.split("://")[1], "MEDIA_ROOT": str(tmp_path / "media")}
        web = deployment.web(**env)
        body = fixture_text("meta", "messages_image").encode()
        response = httpx.post(f"{web}/webhooks/meta/{deployment.line_id}/", content=body, timeout=10, headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": hmac_sha256_signature(secret=APP_SECRET, body=body)})
        assert response.status_code == 200, response.text

        victim, _ = deployment.worker("victim", **env)
        poll("the victim stuck in the download", lambda: fake.requests_to("GET", r"/lookaside/\w+"),
             alive=deployment.check_alive)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        fake.release.set()  # the stalled answer goes to a dead socket
        assert deployment.sql("SELECT media FROM inbox_message WHERE direction = 'in'") == [("",)]

        deployment.worker("rescuer", **env)
        stored = poll("the file stored by the rescuer", lambda: deployment.sql(
            "SELECT media, media_provider_id, payload FROM inbox_message WHERE direction = 'in' AND media <> ''"),
            deadline=45, alive=deployment.check_alive)
        media, media_provider_id, payload = stored[0]
        assert media_provider_id == "" and "media_failed" not in payload
        assert (tmp_path / "media" / media).read_bytes() == JPEG
        assert len(fake.requests_to("GET", r"/lookaside/\w+")) == 2
