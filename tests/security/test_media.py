"""Issue 15 items 1, 2, 3 and 10: media cannot run script on our origin, is served only to who may
see the conversation, has unguessable names, is never fetched from internal addresses, and a
hostile file name neither breaks the download nor creates folders."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from conftest import drain_tasks, post_sandbox, token_client
from conversa.campaigns.models import Campaign
from conversa.contacts.models import ContactDatabase
from conversa.core import media, netfetch
from conversa.inbox.models import Conversation, Message
from conversa.whatsapp.models import Line, Provider
from fakes.gupshup import GupshupFake
from fakes.server import FakeServer, Reply, fixture_text

SCRIPT = b"<html><body><script>fetch('/api/v1/me/').then(r => r.text()).then(alert)</script></body></html>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
STORED_NAME = re.compile(r"media/\d{4}/\d{2}/[0-9a-f]{32}\.[a-z0-9]+")


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def attended(customer_says: Callable[..., Conversation]) -> Conversation:
    conversation = customer_says("Hola, necesito la factura")
    assert token_client("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    return conversation


@pytest.fixture
def outside() -> Iterator[FakeServer]:
    """A real HTTP server on 127.0.0.1 standing for anything internal (an admin panel, a metadata
    service): nothing may ever reach it through us."""
    with FakeServer() as server:
        server.route("GET", r"/.*", lambda r, m: Reply(200, SCRIPT, {"Content-Type": "text/html"}))
        yield server


def upload(conversation: Conversation, name: str, content: bytes, content_type: str,
           client: APIClient | None = None) -> Any:
    client = client or token_client("agent1")
    return client.post(f"/api/v1/conversations/{conversation.pk}/messages/",
                       {"file": SimpleUploadedFile(name, content, content_type=content_type)}, format="multipart")


def sent_file(conversation: Conversation, name: str, content: bytes, content_type: str) -> Message:
    response = upload(conversation, name, content, content_type)
    assert response.status_code == 201, response.content
    return Message.objects.get(pk=response.json()["id"])


def get_media(message: Message, username: str | None = "agent1") -> Any:
    client = token_client(username) if username else APIClient()
    return client.get(f"/api/v1/messages/{message.pk}/media/")


def assert_safe_headers(response: Any) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- item 1: stored XSS
def test_html_sent_as_text_plain_is_stored_and_served_as_a_text_attachment(attended: Conversation) -> None:
    message = sent_file(attended, "invoice.html", SCRIPT, "text/plain")
    assert STORED_NAME.fullmatch(message.media.name) and message.media.name.endswith(".txt")
    assert message.media_filename == "invoice.html" and message.media_mime == "text/plain"
    response = get_media(message)
    assert response.status_code == 200 and body_of(response) == SCRIPT
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment")
    assert_safe_headers(response)


def test_png_named_photo_html_is_an_inline_png_never_html(attended: Conversation) -> None:
    message = sent_file(attended, "photo.html", PNG, "image/png")
    assert message.kind == "image" and message.media.name.endswith(".png") and "photo" not in message.media.name
    response = get_media(message)
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline") and "photo.html.png" in response["Content-Disposition"]
    assert_safe_headers(response)


def test_svg_is_never_stored_or_served_as_svg(attended: Conversation, _media_root: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
    refused = upload(attended, "logo.svg", svg, "image/svg+xml")
    assert refused.status_code == 400 and "image/svg+xml" in refused.json()["detail"]
    # Declared as text it is text: stored .txt, downloaded as an attachment.
    message = sent_file(attended, "logo.svg", svg, "text/plain")
    assert message.media.name.endswith(".txt")
    response = get_media(message)
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"].startswith("attachment")
    assert not [name for name in files_under(_media_root) if name.endswith(".svg")]


def test_binary_declared_as_text_is_refused(attended: Conversation) -> None:
    refused = upload(attended, "notes.txt", b"\x00\x01\x02binary", "text/plain")
    assert refused.status_code == 400 and refused.json().get("field", "file") == "file"


def test_customer_document_named_invoice_html_is_a_download(attended: Conversation, demo: dict[str, Any]) -> None:
    # The customer "sends" a file the agent sent before (the sandbox takes only our own links).
    original = sent_file(attended, "notes.txt", SCRIPT, "text/plain")
    link = media.signed_url(original.media.name)
    response = post_sandbox(demo["sales_line"], {"id": "sbx-doc-1", "from": attended.customer_phone, "type": "document",
                                                 "media_url": link, "mime_type": "text/html",
                                                 "filename": "invoice.html"})
    assert response.status_code == 200
    drain_tasks()
    inbound = Message.objects.get(provider_message_id="sbx-doc-1")
    assert inbound.media and inbound.media_filename == "invoice.html"
    assert STORED_NAME.fullmatch(inbound.media.name) and not inbound.media.name.endswith(".html")
    served = get_media(inbound)
    assert served.status_code == 200 and body_of(served) == SCRIPT
    assert not served["Content-Type"].startswith("text/html")
    assert served["Content-Disposition"].startswith("attachment")
    assert_safe_headers(served)


# --------------------------------------------------------------------------- items 1 and 3: access
def test_anonymous_users_get_no_media(attended: Conversation, _media_root: Path) -> None:
    message = sent_file(attended, "photo.png", PNG, "image/png")
    anonymous = get_media(message, None)
    assert anonymous.status_code == 401 and PNG not in anonymous.content
    # The storage itself is not published: neither the old /media/<path> nor any guess of it.
    for path in (f"/media/{message.media.name}", f"/media/media/{message.media.name}"):
        response = Client().get(path)
        assert response.status_code == 404 and PNG not in body_of(response)
    # A console session works like a token.
    console = Client()
    console.force_login(User.objects.get(username="agent1"))
    assert body_of(console.get(message.media_path)) == PNG


def test_other_agents_media_is_404(attended: Conversation) -> None:
    message = sent_file(attended, "photo.png", PNG, "image/png")
    assert get_media(message, "agent1").status_code == 200
    assert get_media(message, "agent2").status_code == 404  # same campaign, not her conversation
    assert get_media(message, "agent4").status_code == 404  # no WhatsApp skill
    assert get_media(message, "supervisor").status_code == 200
    assert token_client("agent2").get("/api/v1/messages/999999/media/").status_code == 404


def test_stored_names_are_random_not_guessable(attended: Conversation, demo: dict[str, Any],
                                               _media_root: Path) -> None:
    first = sent_file(attended, "photo.png", PNG, "image/png")
    second = sent_file(attended, "photo.png", PNG, "image/png")
    assert first.media.name != second.media.name
    link = media.signed_url(first.media.name)
    post_sandbox(demo["sales_line"], {"id": "sbx-img-1", "from": attended.customer_phone, "type": "image",
                                      "media_url": link})
    drain_tasks()
    inbound = Message.objects.get(provider_message_id="sbx-img-1")
    for name in (first.media.name, second.media.name, inbound.media.name):
        assert STORED_NAME.fullmatch(name), name
    assert not [n for n in files_under(_media_root) if re.search(r"(image|document)-\d+", n)]
    # Every media URL the API hands out is the checking view.
    thread = token_client("agent1").get(f"/api/v1/conversations/{attended.pk}/messages/").json()
    urls = {m["media_url"] for m in thread if m["media_url"]}
    assert urls == {f"/api/v1/messages/{m.pk}/media/" for m in (first, second, inbound)}


# --------------------------------------------------------------------------- signed links (providers)
def test_provider_links_are_signed_expiring_and_name_one_file(attended: Conversation, settings: Any) -> None:
    message = sent_file(attended, "invoice.html", SCRIPT, "text/plain")
    path = media.signed_path(message.media.name, display_name=message.media_filename)
    response = Client().get(path)  # no login: the signature is the permission
    assert response.status_code == 200 and body_of(response) == SCRIPT
    assert response["Content-Disposition"].startswith("attachment")
    assert_safe_headers(response)
    token = path.rstrip("/").rsplit("/", 1)[1]
    missing = media.signed_token("media/2020/01/" + "0" * 32 + ".txt")
    assert Client().get(f"/media/links/{missing}/").status_code == 404  # signed, but no such stored file
    assert Client().get(f"/media/links/{token[:-2]}xx/").status_code == 404  # tampered
    settings.CONVERSA_MEDIA_LINK_MAX_AGE = -1
    assert Client().get(path).status_code == 404  # expired


def test_x_accel_redirect_hands_the_bytes_to_nginx(attended: Conversation, settings: Any) -> None:
    message = sent_file(attended, "invoice.html", SCRIPT, "text/plain")
    settings.CONVERSA_MEDIA_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    response = get_media(message)
    assert response.status_code == 200 and response["X-Accel-Redirect"] == f"/protected-media/{message.media.name}"
    assert body_of(response) == b""
    assert response["Content-Disposition"].startswith("attachment")
    assert_safe_headers(response)


# --------------------------------------------------------------------------- item 2: SSRF
@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/admin",
    "http://localhost:{port}/admin",
    "http://[::1]:{port}/admin",
    "http://10.0.0.7/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://0.0.0.0:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
])
def test_internal_addresses_are_refused(outside: FakeServer, url: str) -> None:
    port = outside.url.rsplit(":", 1)[1]
    with pytest.raises(netfetch.FetchRefused):
        netfetch.fetch(url.format(port=port), max_bytes=1024)
    assert outside.requests == []


def test_a_redirect_to_loopback_is_refused(outside: FakeServer, settings: Any) -> None:
    with FakeServer() as public:  # stands for a public host (allowed), redirecting inward
        public.route("GET", r"/file", lambda r, m: Reply(302, b"", {"Location": f"{outside.url}/secret"}))
        public.route("GET", r"/ok", lambda r, m: Reply(200, b"fine", {"Content-Type": "text/plain"}))
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [public.url.split("://")[1]]
        assert netfetch.fetch(f"{public.url}/ok", max_bytes=1024).content == b"fine"
        with pytest.raises(netfetch.FetchRefused, match="non-public"):
            netfetch.fetch(f"{public.url}/file", max_bytes=1024)
        assert len(public.requests_to("GET", "/file")) == 1
    assert outside.requests == []


def test_redirect_loops_and_big_bodies_are_cut_off(settings: Any) -> None:
    with FakeServer() as public:
        public.route("GET", r"/loop", lambda r, m: Reply(302, b"", {"Location": "/loop"}))
        public.route("GET", r"/big", lambda r, m: Reply(200, b"x" * 5000, {"Content-Type": "image/png"}))
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [public.url.split("://")[1]]
        with pytest.raises(netfetch.FetchRefused, match="redirects"):
            netfetch.fetch(f"{public.url}/loop", max_bytes=1024, max_redirects=3)
        assert len(public.requests_to("GET", "/loop")) == 4
        with pytest.raises(netfetch.FetchRefused, match="too big"):
            netfetch.fetch(f"{public.url}/big", max_bytes=1024)


def test_credentials_never_follow_a_redirect_to_another_host(settings: Any) -> None:
    with FakeServer() as other, FakeServer() as public:
        other.route("GET", r"/x", lambda r, m: Reply(200, b"ok"))
        public.route("GET", r"/r", lambda r, m: Reply(302, b"", {"Location": f"{other.url}/x"}))
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [public.url.split("://")[1], other.url.split("://")[1]]
        netfetch.fetch(f"{public.url}/r", max_bytes=1024, headers={"Authorization": "Bearer secret"})
        assert public.requests[0].headers["authorization"] == "Bearer secret"
        assert "authorization" not in other.requests[0].headers


def test_sandbox_fetches_no_outside_url_and_the_simulator_reads_nothing_back(
        outside: FakeServer, demo: dict[str, Any]) -> None:
    line = demo["sales_line"]
    for n, url in enumerate([f"{outside.url}/admin", "http://169.254.169.254/latest/meta-data/"]):
        post_sandbox(line, {"id": f"sbx-ssrf-{n}", "from": "+5491155550009", "type": "document",
                            "media_url": url, "filename": "loot.html"})
    drain_tasks()
    assert outside.requests == []
    for message in Message.objects.filter(provider_message_id__startswith="sbx-ssrf-"):
        assert not message.media and message.payload["media_failed"] is True
        assert "only accepts media links made by this app" in message.payload["media_error"]
    simulator = Client().get(f"/sandbox/{line.pk}/messages/", {"phone": "+5491155550009"}).json()
    assert [m["media_url"] for m in simulator["messages"]] == ["", ""]
    assert b"script" not in json.dumps(simulator).encode()


# --------------------------------------------------------------------------- GupShup: guard + names
@pytest.fixture
def gupshup(settings: Any, demo: dict[str, Any]) -> Iterator[tuple[GupshupFake, Line]]:
    with GupshupFake(api_key="k", app_id="app") as fake:
        settings.GUPSHUP_BASE_URL = fake.url
        settings.PROVIDER_HTTP_TIMEOUT = 5
        settings.CONVERSA_FETCH_ALLOWED_HOSTS = [fake.url.split("://")[1]]  # the fake provider only
        provider = Provider.objects.create(name="GupShup sec", kind=Provider.Kind.GUPSHUP, config={"api_key": "k"},
                                           webhook_secret="s")
        campaign = Campaign.objects.create(name="GupShup sec",
                                           contact_database=ContactDatabase.objects.get(name="Sales contacts"))
        campaign.agents.add(*User.objects.filter(username__in=["agent1", "agent2"]))
        campaign.supervisors.add(User.objects.get(username="supervisor"))
        line = Line.objects.create(name="GupShup sec", number="+15550100030", provider=provider, campaign=campaign,
                                   config={"app_name": "ConversaTest", "app_id": "app"})
        yield fake, line


def gupshup_file(line: Line, *, message_id: str, url: str, name: str, mime: str = "application/pdf") -> Message:
    payload = json.loads(fixture_text("gupshup", "message_file", media_base="http://unused"))
    payload["payload"]["id"] = message_id
    payload["payload"]["payload"].update({"url": url, "name": name, "content-type": mime})
    response = APIClient().post(f"/webhooks/gupshup/{line.pk}/?token=s", data=json.dumps(payload),
                                content_type="application/json")
    assert response.status_code == 200, response.content
    drain_tasks()
    return Message.objects.get(line=line, provider_message_id=message_id)


def test_gupshup_media_on_an_internal_address_is_refused_and_shown(gupshup: tuple[GupshupFake, Line],
                                                                   outside: FakeServer) -> None:
    _fake, line = gupshup
    message = gupshup_file(line, message_id="gs-ssrf", url=f"{outside.url}/admin", name="x.pdf")
    assert outside.requests == []
    assert not message.media and message.payload["media_failed"] is True
    assert "non-public" in message.payload["media_error"]
    assert message.body == "Factura"  # the message itself is kept


@pytest.mark.parametrize(("name", "shown"), [
    ("../../x.txt", "x.txt"),
    ("/etc/passwd", "passwd"),
    ("a/b/c.txt", "c.txt"),
    ("..\\..\\win.ini", "win.ini"),
])
def test_hostile_customer_file_names_neither_break_nor_create_folders(
        gupshup: tuple[GupshupFake, Line], _media_root: Path, name: str, shown: str) -> None:
    fake, line = gupshup
    fake.media["doc.txt"] = (b"plain words", "text/plain")
    message = gupshup_file(line, message_id="gs-name", url=f"{fake.url}/media/doc.txt", name=name,
                           mime="text/plain")
    assert message.media and message.media.read() == b"plain words"
    assert message.media_filename == shown
    assert STORED_NAME.fullmatch(message.media.name) and message.media.name.endswith(".txt")
    assert files_under(_media_root) == [message.media.name]
    response = get_media(message, "supervisor")
    saved_as = shown if shown.endswith(".txt") else f"{shown}.txt"  # our extension, from the sniffed type
    assert response.status_code == 200 and f'filename="{saved_as}"' in response["Content-Disposition"]


def test_a_missing_file_is_marked_failed_on_the_message_and_in_the_console(
        gupshup: tuple[GupshupFake, Line]) -> None:
    fake, line = gupshup
    message = gupshup_file(line, message_id="gs-404", url=f"{fake.url}/media/gone.pdf", name="gone.pdf")
    assert not message.media and message.payload["media_failed"] is True
    assert "404" in message.payload["media_error"]
    conversation = message.conversation
    assert token_client("agent1").post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    console = Client()
    console.force_login(User.objects.get(username="agent1"))
    page = console.get(f"/console/c/{conversation.pk}/messages/").content.decode()
    assert 'data-testid="media-error"' in page and "gone.pdf" in page and "404" in page


# --------------------------------------------------------------------------- byte ranges
def test_a_byte_range_is_served_as_a_206_with_the_same_safe_headers(attended: Conversation) -> None:
    """Browsers seek in voice notes and videos with Range requests: one range is a 206 carrying
    exactly those bytes; what cannot be a range is the whole file or a 416, never a 500."""
    content = PNG + bytes(range(256)) * 40  # 10,312 bytes of a PNG
    message = sent_file(attended, "photo.png", content, "image/png")
    size = len(content)
    client = token_client("agent1")

    def ranged(header: str, **extra: str) -> Any:
        return client.get(f"/api/v1/messages/{message.pk}/media/", HTTP_RANGE=header, **extra)

    whole = get_media(message)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and body_of(whole) == content

    for header, first, last in [("bytes=0-99", 0, 99), ("bytes=10000-", 10000, size - 1),
                                ("bytes=-12", size - 12, size - 1), ("bytes=5000-999999", 5000, size - 1)]:
        response = ranged(header)
        assert response.status_code == 206, header
        assert response["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert int(response["Content-Length"]) == last - first + 1
        assert body_of(response) == content[first:last + 1], header
        assert response["Content-Type"] == "image/png"
        assert_safe_headers(response)

    for header in ["bytes=99999-", "bytes=-0"]:
        refused = ranged(header)
        assert refused.status_code == 416 and refused["Content-Range"] == f"bytes */{size}", header
    for header in ["bytes=0-1,5-9", "lines=1-2", "bytes=9-3", "bytes=abc", "bytes=-"]:
        ignored = ranged(header)
        assert ignored.status_code == 200 and body_of(ignored) == content, header
    # An If-Range we keep nothing to check against: the whole file.
    conditional = ranged("bytes=0-9", HTTP_IF_RANGE='"some-etag"')
    assert conditional.status_code == 200 and body_of(conditional) == content
    # Other agents still get a 404, range or not.
    other = token_client("agent2").get(f"/api/v1/messages/{message.pk}/media/", HTTP_RANGE="bytes=0-9")
    assert other.status_code == 404

    link = media.signed_path(message.media.name, display_name=message.media_filename)
    linked = Client().get(link, HTTP_RANGE="bytes=0-7")
    assert linked.status_code == 206 and body_of(linked) == content[:8]
