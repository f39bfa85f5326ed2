"""The webhook fast path while PostgreSQL is down: every callback is answered 503 with Retry-After
(never 200 for a body that was not stored, never a 500 traceback), and once PostgreSQL is back the
same process stores webhooks again, each exactly once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import Deployment, poll

pytestmark = pytest.mark.postgres_only
OUTAGE_POSTS = 5


def post(url: str, line_id: int, n: int) -> httpx.Response:
    payload = {"id": f"outage-{n}", "from": f"+54911556{n:05d}", "name": "Ana", "text": f"mensaje {n}"}
    return httpx.post(f"{url}/webhooks/sandbox/{line_id}/", json=payload, timeout=30)


def test_postgresql_down_is_503_with_retry_after_and_the_intake_recovers(deployment: Deployment) -> None:
    # A short pool timeout: while the server is down, a connection attempt gives up within seconds.
    url = deployment.web(CONVERSA_DB_POOL_TIMEOUT="2")
    before = deployment.sql("SELECT count(*) FROM whatsapp_webhookevent")[0][0]
    assert post(url, deployment.line_id, 0).json()["status"] == "stored"
    deployment.cluster.stop()
    try:
        answers = [post(url, deployment.line_id, n) for n in range(1, OUTAGE_POSTS + 1)]
    finally:
        deployment.cluster.start()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert answer.json()["code"] == "unavailable"

    def stored_again() -> Any:
        answer = post(url, deployment.line_id, 1)  # the provider's retry of a refused callback
        return answer.status_code == 200 and answer.json()

    assert poll("the intake to store again", stored_again, deadline=60.0)["status"] == "stored"
    for n in range(2, OUTAGE_POSTS + 1):
        assert post(url, deployment.line_id, n).json()["status"] == "stored"
    stored = deployment.sql("SELECT count(*) FROM whatsapp_webhookevent")[0][0]
    assert stored - before == OUTAGE_POSTS + 1
