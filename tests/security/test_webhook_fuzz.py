"""Fuzz of every provider's webhook parser, through the real endpoint with valid signatures.

Bodies are the recorded formats (tests/fixtures, the sandbox's documented shapes) with parts
replaced by arbitrary JSON or removed, plus plainly bad bodies. Whatever arrives: never a 500;
a body nothing can be read from is a 400 in the JSON error envelope. Bounded: a few dozen examples
per provider.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from conversa.campaigns.models import Campaign
from conversa.contacts.models import ContactDatabase
from conversa.whatsapp.adapters.base import hmac_sha256_signature
from conversa.whatsapp.models import Line, Provider
from fakes.server import FIXTURES, fixture_text

META_SECRET = "fuzz-meta-secret"
GUPSHUP_SECRET = "fuzz-gupshup-secret"
SANDBOX_SECRET = "fuzz-sandbox-secret"
SUBS = {"media_base": "https://media.example.com", "media_url": "https://media.example.com/x", "gs_id": "gs-1",
        "next_url": "https://graph.example.com/next"}

FUZZ = settings(max_examples=40, deadline=datetime.timedelta(seconds=5), derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def recorded(vendor: str, prefixes: tuple[str, ...]) -> list[Any]:
    docs = []
    for path in sorted((FIXTURES / vendor).glob("*.json")):
        if path.stem.startswith(prefixes):
            docs.append(json.loads(fixture_text(vendor, path.stem, **SUBS)))
    assert docs, vendor
    return docs


META_DOCS = recorded("meta", ("messages_", "statuses_", "template_", "value_"))
GUPSHUP_DOCS = recorded("gupshup", ("message_", "event_", "user_event_", "template_event"))
SANDBOX_DOCS: list[Any] = [
    {"id": "m1", "from": "+5491155550001", "name": "Ana", "text": "Hola"},
    {"id": "m2", "from": "+5491155550001", "type": "image", "media_url": "https://x.example/a.png",
     "mime_type": "image/png", "filename": "a.png", "text": "mirá"},
    {"id": "m3", "from": "+5491155550001", "type": "location", "latitude": -34.6, "longitude": -58.4},
    {"id": "m4", "from": "+5491155550001", "type": "interactive", "reply_id": "opt-1", "text": "Ventas"},
    {"status": {"id": "sbx-out-1", "status": "failed", "error_code": "131047", "error_title": "closed"}},
    [{"id": "m5", "from": "+5491155550002", "text": "uno"}, {"status": {"id": "x", "status": "read"}}],
]

json_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
             | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, docs: list[Any]) -> Any:
    """A recorded body with one to three parts replaced by arbitrary JSON, or removed."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            return draw(json_value)
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_value)
    return doc


def unreadable(required: set[str]) -> st.SearchStrategy[bytes]:
    """Bodies nothing can be read from: not JSON, not an object, or an object without any of the
    provider's top-level fields."""
    objects = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in required), json_value, max_size=4)
    return st.one_of(
        st.binary(max_size=60).filter(lambda b: not _is_json(b)),
        st.sampled_from([b"", b"null", b"[]", b"{}", b'"text"', b"42", b"[" * 5000 + b"]" * 5000]),
        (st.lists(json_leaf, max_size=3) | json_leaf).map(lambda v: json.dumps(v).encode()),
        objects.map(lambda v: json.dumps(v).encode()),
    )


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _line(kind: str, number: str, secret: str, demo: dict[str, Any], **config: str) -> Line:
    provider = Provider.objects.create(name=f"{kind} fuzz", kind=kind, webhook_secret=secret,
                                       config={"app_secret": secret} if kind == Provider.Kind.META else {})
    return Line.objects.create(name=f"{kind} fuzz", number=number, provider=provider,
                               campaign=Campaign.objects.create(name=f"{kind} fuzz",
                                                                contact_database=ContactDatabase.objects.first()),
                               config=config)


@pytest.fixture
def lines(demo: dict[str, Any]) -> dict[str, Line]:
    return {
        "meta": _line(Provider.Kind.META, "+15550100031", META_SECRET, demo,
                      phone_number_id="1122334455667", verify_token="v"),
        "gupshup": _line(Provider.Kind.GUPSHUP, "+15550100032", GUPSHUP_SECRET, demo, app_name="Fuzz"),
        "sandbox": _line(Provider.Kind.SANDBOX, "+15550100033", SANDBOX_SECRET, demo),
    }


def post(kind: str, line: Line, body: bytes) -> Any:
    """POST the raw body the way the provider does, correctly signed."""
    url, extra = f"/webhooks/{kind}/{line.pk}/", {}
    if kind == "meta":
        extra["HTTP_X_HUB_SIGNATURE_256"] = hmac_sha256_signature(secret=META_SECRET, body=body)
    elif kind == "gupshup":
        url += f"?token={GUPSHUP_SECRET}"
    else:
        extra["HTTP_X_CONVERSA_SIGNATURE"] = hmac_sha256_signature(secret=SANDBOX_SECRET, body=body)
    return APIClient().post(url, data=body, content_type="application/json", **extra)


def assert_answered(response: Any, allowed: set[int], body: bytes) -> None:
    assert response.status_code in allowed, (response.status_code, body[:300], response.content[:300])
    if response.status_code == 400:
        error = response.json()
        assert error["code"] and error.get("message", error.get("detail")), error


def test_signed_recorded_bodies_are_accepted(lines: dict[str, Line]) -> None:
    """The fuzz's signing is right: the unmodified recorded bodies are stored (200)."""
    for kind, docs in (("meta", META_DOCS), ("gupshup", GUPSHUP_DOCS), ("sandbox", SANDBOX_DOCS)):
        for doc in docs[:3]:
            body = json.dumps(doc).encode()
            assert post(kind, lines[kind], body).status_code == 200, (kind, doc)


@pytest.mark.parametrize("kind,docs", [("meta", META_DOCS), ("gupshup", GUPSHUP_DOCS), ("sandbox", SANDBOX_DOCS)])
def test_mutated_bodies_never_break_the_endpoint(kind: str, docs: list[Any], lines: dict[str, Line]) -> None:
    @FUZZ
    @given(doc=mutated(docs))
    def check(doc: Any) -> None:
        body = json.dumps(doc).encode()
        assert_answered(post(kind, lines[kind], body), {200, 400}, body)

    check()


@pytest.mark.parametrize("kind,required", [
    ("meta", {"object", "entry"}),
    ("gupshup", {"app", "type", "payload", "timestamp", "version"}),
    ("sandbox", {"id", "from", "status", "text", "type", "name"}),
])
def test_unreadable_bodies_are_answered_400(kind: str, required: set[str], lines: dict[str, Line]) -> None:
    @FUZZ
    @given(body=unreadable(required))
    def check(body: bytes) -> None:
        assert_answered(post(kind, lines[kind], body), {400}, body)

    check()
