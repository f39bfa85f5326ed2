"""The webhook fast path (whatsapp.fast_intake ahead of Django, issue 10) on a real uvicorn server:
concurrent signed callbacks are each stored exactly once and acknowledged only once committed,
replays are duplicates with the same id, and every refusal is the same answer, byte for byte, as
the Django view's."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from tests.servers import running_server, server_env

from conversa.inbox.models import Message
from conversa.whatsapp.adapters.base import hmac_sha256_signature
from conversa.whatsapp.fast_intake import GATHERED_ENOUGH, GroupCommitWriter, _Pending
from conversa.whatsapp.intake import MAX_WEBHOOK_BYTES, IncomingWebhook, KnownLines
from conversa.whatsapp.models import Line, RejectedWebhook, WebhookEvent

from .conftest import META_APP_SECRET, meta_payload

CONCURRENT = 200


@pytest.fixture
def server(meta_line: Line, tmp_path: Path) -> Iterator[str]:
    env = server_env(CONVERSA_EMBEDDED_WORKER="0")  # events stay unprocessed until the test drains them
    with running_server(env=env, logs=tmp_path, ready_path="/login/", deadline=60.0) as url:
        yield url


def text_body(n: int) -> bytes:
    payload = json.loads(meta_payload("messages_text"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = f"wamid.intake-{n}"
    message["text"]["body"] = f"mensaje {n}"
    return json.dumps(payload).encode()


def signed(body: bytes, secret: str = META_APP_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": hmac_sha256_signature(secret=secret, body=body)}


def _post_then_look(url: str, body: bytes) -> tuple[int, dict[str, Any], bool]:
    """POST one signed webhook; (status, answer, whether its event was in the database on arrival)."""
    try:
        response = httpx.post(url, content=body, headers=signed(body), timeout=30)
        answer = response.json()
        stored = (response.status_code == 200
                  and WebhookEvent.objects.filter(pk=answer["event"], body=body).exists())
        return response.status_code, answer, stored
    finally:
        connection.close()  # this thread's connection, not left open on the test database


def post_all(url: str, bodies: list[bytes]) -> list[tuple[int, dict[str, Any], bool]]:
    with ThreadPoolExecutor(max_workers=64) as pool:
        return list(pool.map(lambda body: _post_then_look(url, body), bodies))


def test_concurrent_signed_webhooks_are_stored_once_and_acknowledged_after_commit(
        server: str, meta_line: Line, run_tasks: Callable[[], None]) -> None:
    url = f"{server}/webhooks/meta/{meta_line.pk}/"
    bodies = [text_body(n) for n in range(CONCURRENT)]
    first = post_all(url, bodies)
    assert [status for status, _, _ in first] == [200] * CONCURRENT, first[:3]
    assert all(answer["status"] == "stored" for _, answer, _ in first)
    assert all(in_database for _, _, in_database in first), "acknowledged before its event was committed"
    ids = [answer["event"] for _, answer, _ in first]
    assert len(set(ids)) == CONCURRENT
    assert WebhookEvent.objects.filter(line=meta_line).count() == CONCURRENT

    replayed = post_all(url, bodies)
    assert [(status, answer) for status, answer, _ in replayed] == [
        (200, {"status": "duplicate", "event": event_id}) for event_id in ids]
    assert WebhookEvent.objects.filter(line=meta_line).count() == CONCURRENT

    # Announced once committed: the task worker turns every stored event into the customer's message.
    run_tasks()
    assert Message.objects.filter(conversation__line=meta_line,
                                  provider_message_id__startswith="wamid.intake-").count() == CONCURRENT


def test_a_batch_with_the_same_body_twice_stores_it_once(server: str, meta_line: Line) -> None:
    url = f"{server}/webhooks/meta/{meta_line.pk}/"
    body = text_body(1)
    answers = post_all(url, [body] * 40)
    assert {status for status, _, _ in answers} == {200}
    assert len({answer["event"] for _, answer, _ in answers}) == 1
    assert sorted(answer["status"] for _, answer, _ in answers) == ["duplicate"] * 39 + ["stored"]
    assert WebhookEvent.objects.filter(line=meta_line).count() == 1


def _refusals(meta_line: Line, sandbox_line: Line) -> list[tuple[str, str, bytes, dict[str, str]]]:
    meta = f"/webhooks/meta/{meta_line.pk}/"
    body = text_body(7)
    unusable = b'{"text": "no id, no sender"}'
    return [
        ("unknown line", "/webhooks/meta/999999/", body, signed(body)),
        ("line id past any integer column", f"/webhooks/meta/{10**30}/", body, signed(body)),
        ("line of another provider kind", f"/webhooks/gupshup/{meta_line.pk}/", body, signed(body)),
        ("bad signature", meta, body, signed(body, secret="someone-elses-secret")),
        ("no signature", meta, body, {"content-type": "application/json"}),
        ("not JSON", meta, b"not json at all", signed(b"not json at all")),
        ("nothing usable", f"/webhooks/sandbox/{sandbox_line.pk}/", unusable, {"content-type": "application/json"}),
        ("too large", f"/webhooks/sandbox/{sandbox_line.pk}/", b"x" * (MAX_WEBHOOK_BYTES + 1),
         {"content-type": "application/json"}),
    ]


def test_refusals_are_the_django_views_answers_byte_for_byte(server: str, meta_line: Line,
                                                             demo: dict[str, Any]) -> None:
    expected_status = {"unknown line": 404, "line id past any integer column": 404,
                       "line of another provider kind": 404, "bad signature": 401, "no signature": 401,
                       "not JSON": 400, "nothing usable": 400, "too large": 413}
    for case, path, body, headers in _refusals(meta_line, demo["sales_line"]):
        fast = httpx.post(f"{server}{path}", content=body, headers=headers, timeout=30)
        django = Client().post(path, data=body, content_type=headers["content-type"],
                               **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()
                                  if k != "content-type"})
        assert (fast.status_code, django.status_code) == (expected_status[case],) * 2, (case, fast.text)
        assert fast.content == django.content, case
        assert fast.headers["content-type"] == "application/json", case
    assert WebhookEvent.objects.count() == 0
    # 400s and 413s leave their samples, through both doors.
    assert sorted(RejectedWebhook.objects.values_list("status_code", flat=True)) == [400] * 4 + [413] * 2
    bodies = set(RejectedWebhook.objects.filter(status_code=400).values_list("body_sample", flat=True))
    assert {bytes(b) for b in bodies} == {b"not json at all", b'{"text": "no id, no sender"}'}


def test_the_handshake_and_other_methods_still_go_to_django(server: str, meta_line: Line) -> None:
    url = f"{server}/webhooks/meta/{meta_line.pk}/"
    challenge = httpx.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me-please",
                                       "hub.challenge": "1158201444"}, timeout=10)
    assert (challenge.status_code, challenge.text) == (200, "1158201444")
    assert httpx.put(url, content=b"{}", timeout=10).status_code == 405


def test_known_lines_are_read_once_per_interval_and_an_unknown_one_every_time(meta_line: Line) -> None:
    """The writers' line cache (decisions #67): a kept line costs no query within `fresh_for`, an
    id no line has is asked again (a line created meanwhile is found at once), and a stale one is
    read again."""
    known = KnownLines(fresh_for=60)
    missing = meta_line.pk + 1000
    with CaptureQueriesContext(connection) as first:
        assert set(known.lines({meta_line.pk, missing})) == {meta_line.pk}
    with CaptureQueriesContext(connection) as kept:
        found = known.lines({meta_line.pk})
    assert len(first) == 1 and len(kept) == 0
    assert found[meta_line.pk].provider.kind == "meta"
    with CaptureQueriesContext(connection) as unknown:
        assert known.lines({missing}) == {}
    assert len(unknown) == 1
    stale = KnownLines(fresh_for=0)
    stale.lines({meta_line.pk})
    Line.objects.filter(pk=meta_line.pk).update(name="Renamed")
    assert stale.lines({meta_line.pk})[meta_line.pk].name == "Renamed"


def test_an_acknowledgement_is_django_s_json_answer_byte_for_byte(server: str, meta_line: Line) -> None:
    from django.http import JsonResponse

    url = f"{server}/webhooks/meta/{meta_line.pk}/"
    body = text_body(11)
    first, replay = (httpx.post(url, content=body, headers=signed(body), timeout=30) for _ in range(2))
    event = WebhookEvent.objects.get(line=meta_line, body=body).pk
    assert first.status_code == replay.status_code == 200
    assert first.content == JsonResponse({"status": "stored", "event": event}).content
    assert replay.content == JsonResponse({"status": "duplicate", "event": event}).content


def _signed_meta_bodies_the_fast_reader_hands_to_json() -> list[tuple[str, bytes, str]]:
    """(case, body, what the 400 must say): bodies orjson refuses and the standard library decides."""
    deep = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 70 + b"]" * 70 + b"}"
    return [
        ("NaN", b'{"object": "whatsapp_business_account", "entry": [], "n": NaN}', "NaN is not valid JSON"),
        ("overflowing number", b'{"object": "whatsapp_business_account", "entry": [1e999]}', "number out of range"),
        ("too deep", deep, "nested deeper than 64 levels"),
        ("truncated", text_body(12)[:-3], "not valid JSON"),
        ("not UTF-8", b'{"entry": ["\xff"]}', "not valid JSON"),
    ]


@pytest.mark.parametrize("case", [c for c, _, _ in _signed_meta_bodies_the_fast_reader_hands_to_json()])
def test_signed_bodies_that_are_not_json_we_accept_are_refused_400_naming_the_problem(
        server: str, meta_line: Line, case: str) -> None:
    [(_, body, said)] = [c for c in _signed_meta_bodies_the_fast_reader_hands_to_json() if c[0] == case]
    response = httpx.post(f"{server}/webhooks/meta/{meta_line.pk}/", content=body, headers=signed(body), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "body"
    assert said in response.json()["message"]
    assert not WebhookEvent.objects.exists()  # nothing acknowledged, nothing stored
    assert RejectedWebhook.objects.get().status_code == 400


def test_unsigned_and_missigned_bodies_are_refused_401_before_being_read(server: str, meta_line: Line) -> None:
    url = f"{server}/webhooks/meta/{meta_line.pk}/"
    body = text_body(13)
    unsigned = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
    missigned = httpx.post(url, content=body, headers=signed(body + b" "), timeout=30)
    not_json = httpx.post(url, content=b"{", headers={"content-type": "application/json"}, timeout=30)
    for response in (unsigned, missigned, not_json):  # the signature first: a forger learns nothing of the body
        assert response.status_code == 401, response.text
        assert "X-Hub-Signature-256" in response.json()["message"]
    assert not WebhookEvent.objects.exists()


def test_a_signed_body_with_integers_past_64_bits_is_stored_as_sent(server: str, meta_line: Line) -> None:
    payload = json.loads(text_body(14))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = 10**25  # no float on the way
    body = json.dumps(payload).encode()
    response = httpx.post(f"{server}/webhooks/meta/{meta_line.pk}/", content=body, headers=signed(body), timeout=30)
    assert response.status_code == 200, response.text
    assert bytes(WebhookEvent.objects.get(pk=response.json()["event"]).body) == body


def _queued(writer: GroupCommitWriter, loop: asyncio.AbstractEventLoop, n: int, *, waited: float = 0.0) -> None:
    request = IncomingWebhook(kind="meta", line_id=1, headers={}, query={}, body=text_body(n))
    writer._queue.put(_Pending(request=request, future=loop.create_future(), loop=loop,
                               queued_at=time.monotonic() - waited))


def test_a_writer_gathers_what_arrives_within_its_pause_into_one_batch() -> None:
    """Decisions #80: the requests arriving within `gather_for` of the first go in its batch (one
    commit, one NOTIFY), up to `max_batch`, which ends the pause early."""
    loop = asyncio.new_event_loop()
    try:
        writer = GroupCommitWriter(gather_for=30.0, max_batch=4)
        _queued(writer, loop, 1)
        later = threading.Thread(target=lambda: [_queued(writer, loop, n) for n in (2, 3, 4, 5)])
        started = time.monotonic()
        later.start()
        batch = writer._gather()
        later.join()
        assert [p.request.body for p in batch] == [text_body(n) for n in (1, 2, 3, 4)]
        assert time.monotonic() - started < 25  # ended by the full batch, not by the pause
        writer._gather_for = 0.0  # (no pause for the lone request left)
        assert [p.request.body for p in writer._gather()] == [text_body(5)]  # the rest: the next batch
    finally:
        loop.close()


def test_a_request_that_already_waited_its_pause_is_written_with_what_is_queued_at_once() -> None:
    """Under a backlog nothing more is waited for (the first request waited longer already), nor
    once a batch holds GATHERED_ENOUGH requests."""
    loop = asyncio.new_event_loop()
    try:
        writer = GroupCommitWriter(gather_for=30.0)
        _queued(writer, loop, 1, waited=31.0)
        _queued(writer, loop, 2)
        started = time.monotonic()
        assert len(writer._gather()) == 2
        assert time.monotonic() - started < 25
        no_pause = GroupCommitWriter(gather_for=0.0)
        _queued(no_pause, loop, 3)
        assert len(no_pause._gather()) == 1
        # Senders at full speed (each waiting for its answer) fill a batch at once: no pause either.
        full = GroupCommitWriter(gather_for=30.0)
        for n in range(GATHERED_ENOUGH + 1):
            _queued(full, loop, n)
        started = time.monotonic()
        assert len(full._gather()) == GATHERED_ENOUGH + 1
        assert time.monotonic() - started < 25
    finally:
        loop.close()
