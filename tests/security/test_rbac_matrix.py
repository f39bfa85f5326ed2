"""Generated RBAC matrix: every URL pattern of the URLconf, every role, own / other agent's /
other campaign's object, against an explicit table of expected status codes.

The patterns are walked from the live URLconf (`get_resolver`, includes recursed), so a new endpoint
shows up here by itself — and fails until it is classified in `TABLE` (admin model views are
classified by their kind: the admin site checks staff rights on every one of them). URL kwargs are
filled from the fixture objects. Each request runs inside a transaction that is rolled back, so
every cell starts from the same state and a valid request from an allowed user really succeeds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.http import HttpResponseBase
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from tests.conftest import api_token

from conversa.accounts.models import AgentGroup, AgentProfile
from conversa.campaigns.models import Campaign, DispositionOption
from conversa.contacts.models import ContactDatabase, ContactImport
from conversa.core.media import signed_token
from conversa.inbox.models import Conversation, Message
from conversa.outreach.models import BulkSend
from conversa.whatsapp.models import Line, MessageTemplate

ROLES = ["anonymous", "agent4", "agent1", "agent2", "supervisor", "supervisor2", "admin"]
OBJECTS = ["own", "other_agent", "other_campaign"]  # "own" is agent1's, "other_agent" agent2's

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


# --------------------------------------------------------------------------- URL patterns
@dataclasses.dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or the full regex of an unnamed pattern
    route: str
    pattern: URLPattern

    @property
    def kwargs(self) -> list[str]:
        return sorted(self.pattern.pattern.regex.groupindex)


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        else:
            assert isinstance(entry, URLPattern)
            full = prefix + str(entry.pattern)
            yield Route(key=f"{namespace}{entry.name}" if entry.name else full, route=full, pattern=entry)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def build_path(route: str, values: dict[str, Any]) -> str:
    """Fill `<conv:pk>`/`(?P<pk>...)` groups; strip regex anchors of re_path routes."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


# --------------------------------------------------------------------------- fixture objects
class Fixture:
    def __init__(self, objects: dict[str, dict[str, Any]], users: dict[str, User]):
        self.objects = objects
        self.users = users
        self._phones = iter(range(100, 10_000))
        self.clients: dict[str, Client] = {}

    def outbound(self, key: str) -> dict[str, Any]:
        line: Line = self.objects[key]["line"]
        template = MessageTemplate.objects.filter(line=line, status=MessageTemplate.Status.APPROVED).first()
        assert template is not None, line
        params = [f"p{n}" for n in range(len(set(re.findall(r"\{\{(\d+)\}\}", template.body))))]
        return {"line": line.pk, "phone": f"+54911555{next(self._phones):05d}", "template": template.pk,
                "params": params}

    def inbound(self) -> dict[str, Any]:
        return {"id": f"rbac-{next(self._phones)}", "from": "+5491155559999", "name": "Eve", "text": "hola"}

    def relation(self, role: str, key: str | None) -> str:
        if role == "anonymous":
            return "anon"
        if role == "agent4":
            return "noskill"
        if role == "admin":
            return "admin"
        user = self.users[role]
        is_sup = role.startswith("supervisor")
        if key is None:
            return "supervisor" if is_sup else "agent"
        conversation: Conversation = self.objects[key]["conversation"]
        if is_sup:
            supervises = conversation.campaign.supervisors.filter(pk=user.pk).exists()
            return "supervisor" if supervises else "foreign_supervisor"
        if conversation.agent_id == user.pk:
            return "owner"
        return "colleague" if conversation.campaign.agents.filter(pk=user.pk).exists() else "foreign"


# --------------------------------------------------------------------------- expectations
# Object URLs: relation of the caller to the object. Global URLs: the caller's kind.
#   anon · noskill (agent4) · owner (her conversation / the contact she attends) · colleague (same
#   campaign, someone else's) · foreign (a campaign she is not in / does not supervise) ·
#   supervisor (supervises its campaign) · foreign_supervisor (supervises other campaigns; as
#   `foreign` unless told: supervisor pages answer agents 403 but her 404) · admin.
#   Global: anon · noskill · agent · supervisor · admin
Rule = dict[str, int]


def obj(anon: int, noskill: int, owner: int, colleague: int, foreign: int, supervisor: int, admin_: int,
        *, foreign_supervisor: int | None = None) -> Rule:
    return {"anon": anon, "noskill": noskill, "owner": owner, "colleague": colleague, "foreign": foreign,
            "supervisor": supervisor, "admin": admin_,
            "foreign_supervisor": foreign if foreign_supervisor is None else foreign_supervisor}


def glob(anon: int, noskill: int, agent: int, supervisor: int, admin_: int) -> Rule:
    return {"anon": anon, "noskill": noskill, "agent": agent, "supervisor": supervisor, "admin": admin_}


def everyone(code: int) -> Rule:
    return glob(code, code, code, code, code)


@dataclasses.dataclass(frozen=True)
class Check:
    method: str
    rule: Rule
    body: Callable[[Fixture, str], dict[str, Any]] | None = None  # (objects, object key) → body
    json_body: bool = True
    query: Callable[[Fixture, str], dict[str, Any]] | None = None

    @property
    def per_object(self) -> bool:
        return "owner" in self.rule


API_CONV_READ = obj(401, 403, 200, 404, 404, 200, 200)
API_CONV_ACT = obj(401, 403, 200, 404, 404, 200, 200)      # the owner, or a supervisor of the campaign
API_CAMPAIGN_READ = obj(401, 403, 200, 200, 404, 200, 200)
WEB_CONV_READ = obj(302, 403, 200, 404, 404, 200, 200)
WEB_CONV_ACT = obj(302, 403, 204, 404, 404, 204, 204)
SUPERVISOR_PAGE = glob(302, 403, 403, 200, 200)
CONTACTS_PAGE = obj(302, 404, 404, 404, 404, 200, 200)  # a contact database (or its import) of the campaign
# A bulk send of a line of the campaign: agents 403 whatever the job (nothing leaks), supervisors of
# other campaigns 404.
BULK_PAGE = obj(302, 403, 403, 403, 403, 200, 200, foreign_supervisor=404)
BULK_CONTROL_PAGE = obj(302, 403, 403, 403, 403, 302, 302, foreign_supervisor=404)  # back to the job page
BULK_API_READ = obj(401, 403, 403, 403, 403, 200, 200, foreign_supervisor=404)


def _sandbox_rule() -> Rule:
    return everyone(200 if settings.CONVERSA_SANDBOX_SIMULATOR else 404)


def _text(_: Fixture, __: str) -> dict[str, Any]:
    return {"text": "hola"}


def _bulk_json(f: Fixture, key: str) -> dict[str, Any]:
    """A bulk send of the object's line to its campaign's contacts (open conversations included)."""
    outbound = f.outbound(key)
    return {"name": "RBAC", "line": outbound["line"], "template": outbound["template"],
            "params": outbound["params"], "source": "database", "skip_open_conversations": False}


def _bulk_form(f: Fixture, key: str) -> dict[str, Any]:
    body = _bulk_json(f, key)
    return {**body, "params": "\n".join(body["params"]), "skip_open_conversations": ""}


TABLE: dict[str, list[Check]] = {
    # --- REST API
    "api-token": [Check("POST", glob(400, 200, 200, 200, 200), body=lambda f, role: {
        "username": role if role != "anonymous" else "nobody", "password": "demo"})],
    "api-me": [Check("GET", glob(401, 200, 200, 200, 200))],
    "api-my-status": [Check("POST", glob(401, 200, 200, 200, 200), body=lambda f, _: {"status": "paused"})],
    "api-pause-reasons": [Check("GET", glob(401, 200, 200, 200, 200))],
    "api-general-inbox": [Check("GET", glob(401, 403, 200, 200, 200))],
    "api-personal-inbox": [Check("GET", glob(401, 403, 200, 200, 200))],
    "api-conversations": [Check("POST", obj(401, 403, 201, 201, 404, 201, 201), body=lambda f, o: f.outbound(o))],
    "api-conversation": [Check("GET", API_CONV_READ)],
    # Capturing someone's conversation in her campaign is a 409 race answer; outside it, 404.
    "api-capture": [Check("POST", obj(401, 403, 200, 409, 404, 409, 409))],
    # Marking read: whoever may see the conversation (only its agent's unread count changes).
    "api-read": [Check("POST", API_CONV_READ)],
    "api-resend": [Check("POST", API_CONV_ACT)],
    "api-messages": [Check("GET", API_CONV_READ),
                     # A supervisor writes only after joining (403 "Join the conversation…").
                     Check("POST", obj(401, 403, 201, 404, 404, 403, 403), body=_text)],
    "api-identify": [Check("POST", API_CONV_ACT, body=lambda f, o: {"contact": f.objects[o]["contact"].pk})],
    "api-transfer": [Check("POST", API_CONV_ACT, body=lambda f, o: {"agent": f.objects[o]["transfer_to"].pk})],
    "api-close": [Check("POST", API_CONV_ACT, body=lambda f, o: {"disposition": f.objects[o]["option"].pk})],
    "api-notes": [Check("GET", API_CONV_READ),
                  Check("POST", obj(401, 403, 201, 404, 404, 201, 201), body=lambda f, o: {"body": "nota"})],
    "api-conversation-search": [Check("GET", glob(401, 403, 200, 200, 200), query=lambda f, o: {"q": "hola"})],
    "api-contact": [Check("GET", obj(401, 403, 200, 200, 404, 200, 200)),
                    Check("PATCH", obj(401, 403, 200, 403, 404, 200, 200), body=lambda f, o: {"last_name": "X"})],
    "api-contact-dispositions": [Check("GET", obj(401, 403, 200, 200, 404, 200, 200))],
    "api-campaigns": [Check("GET", glob(401, 200, 200, 200, 200))],
    "api-campaign-agents": [Check("GET", API_CAMPAIGN_READ)],
    "api-campaign-contacts": [Check("GET", API_CAMPAIGN_READ)],
    "api-quick-replies": [Check("GET", API_CAMPAIGN_READ)],
    "api-campaign-dispositions": [Check("GET", API_CAMPAIGN_READ)],
    "api-reports-summary": [Check("GET", glob(401, 403, 403, 200, 200))],
    "api-reports-live": [Check("GET", glob(401, 403, 403, 200, 200))],
    "api-lines": [Check("GET", glob(401, 403, 200, 200, 200))],
    # Bulk sends: supervisors of the line's campaign and admins; resume runs on a paused job.
    "api-bulk-sends": [Check("GET", glob(401, 403, 403, 200, 200)),
                       Check("POST", obj(401, 403, 403, 403, 403, 201, 201, foreign_supervisor=404),
                             body=_bulk_json)],
    "api-bulk-send": [Check("GET", BULK_API_READ)],
    "api-bulk-send-pause": [Check("POST", BULK_API_READ)],
    "api-bulk-send-resume": [Check("POST", BULK_API_READ)],
    "api-bulk-send-cancel": [Check("POST", BULK_API_READ)],
    "api-line-templates": [Check("GET", API_CAMPAIGN_READ)],
    # Media: the file of a message, to whoever may see its conversation; signed links (how
    # providers fetch what we send) carry their own permission.
    "api-message-media": [Check("GET", obj(401, 404, 200, 404, 404, 200, 200))],
    "media-link": [Check("GET", obj(200, 200, 200, 200, 200, 200, 200))],
    "schema": [Check("GET", everyone(200))],
    "api-docs": [Check("GET", everyone(200))],
    # --- public edges: providers authenticate themselves (sandbox: unsigned in the demo)
    "webhook": [Check("POST", obj(200, 200, 200, 200, 200, 200, 200), body=lambda f, o: f.inbound())],
    "healthz": [Check("GET", everyone(200))],
    "set_language": [Check("POST", everyone(302), body=lambda f, _: {"language": "es"}, json_body=False)],
    "sandbox": [Check("GET", _sandbox_rule())],
    "favicon": [Check("GET", everyone(301))],  # to the static icon
    # --- console (session login; htmx partials and actions)
    "login": [Check("GET", glob(200, 302, 302, 302, 302))],
    "logout": [Check("POST", everyone(302), json_body=False)],
    "console": [Check("GET", glob(302, 200, 200, 200, 200))],
    "console-conversation": [Check("GET", obj(302, 200, 200, 200, 200, 200, 200))],  # shell; the pane checks
    "console-lists": [Check("GET", glob(302, 200, 200, 200, 200))],
    "console-new-dialog": [Check("GET", glob(302, 403, 200, 200, 200))],
    # The dialog's number check: on the lines she may send from (another campaign's: 404, as the send).
    "console-check-phone": [Check("GET", obj(302, 403, 200, 200, 404, 200, 200),
                                  query=lambda f, o: {"line": f.objects[o]["line"].pk, "phone": "+5491155550123"})],
    "console-start": [Check("POST", obj(302, 403, 204, 204, 404, 204, 204), json_body=False,
                            body=lambda f, o: f.outbound(o))],
    "console-pane": [Check("GET", WEB_CONV_READ)],
    "console-messages": [Check("GET", WEB_CONV_READ)],
    "console-side": [Check("GET", WEB_CONV_READ)],
    "console-read": [Check("POST", WEB_CONV_ACT, json_body=False)],
    "console-capture": [Check("POST", obj(302, 403, 204, 409, 404, 409, 409), json_body=False)],
    "console-send": [Check("POST", obj(302, 403, 204, 404, 404, 403, 403), body=_text, json_body=False)],
    "console-resend": [Check("POST", WEB_CONV_ACT, json_body=False)],  # her reply nobody confirmed
    "console-retry-media": [Check("POST", WEB_CONV_ACT, json_body=False)],  # a failed attachment of hers
    "console-identify": [Check("POST", WEB_CONV_ACT, json_body=False,
                               body=lambda f, o: {"contact": f.objects[o]["contact"].pk})],
    "console-edit-contact": [Check("POST", WEB_CONV_ACT, json_body=False, body=lambda f, o: {"last_name": "X"})],
    "console-transfer": [Check("POST", WEB_CONV_ACT, json_body=False,
                               body=lambda f, o: {"agent": f.objects[o]["transfer_to"].pk})],
    "console-transfer-dialog": [Check("GET", WEB_CONV_READ)],
    # Her own status (the header's control; empty for people without one) · a supervisor joins an
    # agent's conversation to write in it (the agent herself: 403; other agents: 404).
    "console-agent-status": [Check("GET", glob(302, 200, 200, 200, 200))],
    "console-status": [Check("POST", glob(302, 200, 200, 200, 200), json_body=False,
                             body=lambda f, _: {"status": "paused"})],
    "console-join": [Check("POST", obj(302, 403, 403, 404, 404, 204, 204), json_body=False)],
    "console-close": [Check("POST", WEB_CONV_ACT, json_body=False,
                            body=lambda f, o: {"disposition": f.objects[o]["option"].pk})],
    "console-close-dialog": [Check("GET", WEB_CONV_READ)],
    # Private notes (whoever may see the conversation), search, the Closed tab, the customer's
    # history; a conversation is no "previous conversation" of itself, so its transcript is a 404
    # for everyone who may see it (tests/inbox/test_notes_and_search.py reads a real one).
    "console-note-box": [Check("GET", WEB_CONV_READ)],
    "console-add-note": [Check("POST", WEB_CONV_ACT, json_body=False, body=lambda f, o: {"body": "nota"})],
    "console-history": [Check("GET", WEB_CONV_READ)],
    "console-transcript": [Check("GET", obj(302, 403, 404, 404, 404, 404, 404))],
    "console-search": [Check("GET", glob(302, 403, 200, 200, 200), query=lambda f, o: {"q": "hola"})],
    "console-closed": [Check("GET", glob(302, 403, 200, 200, 200))],
    # --- supervisor pages
    "supervisor-dashboard": [Check("GET", SUPERVISOR_PAGE)],
    "supervisor-live": [Check("GET", SUPERVISOR_PAGE)],
    "supervisor-reports": [Check("GET", SUPERVISOR_PAGE)],
    "supervisor-reports-csv": [Check("GET", SUPERVISOR_PAGE)],
    "supervisor-audit": [Check("GET", SUPERVISOR_PAGE)],  # rows scoped to her campaigns (tests/reports)
    # --- bulk sends (pages)
    "bulk-list": [Check("GET", SUPERVISOR_PAGE)],
    "bulk-new": [Check("GET", SUPERVISOR_PAGE),
                 Check("POST", BULK_CONTROL_PAGE, body=_bulk_form, json_body=False)],  # created → its page
    "bulk-preview": [Check("POST", BULK_PAGE, body=_bulk_form, json_body=False)],
    "bulk-job": [Check("GET", BULK_PAGE)],
    "bulk-progress": [Check("GET", BULK_PAGE)],
    "bulk-csv": [Check("GET", BULK_PAGE)],
    "bulk-pause": [Check("POST", BULK_CONTROL_PAGE, json_body=False)],
    "bulk-resume": [Check("POST", BULK_CONTROL_PAGE, json_body=False)],
    "bulk-cancel": [Check("POST", BULK_CONTROL_PAGE, json_body=False)],
    # --- contact databases (supervisors of the database's campaigns, admins; agents 403 / 404)
    "contact-databases": [Check("GET", SUPERVISOR_PAGE)],
    "contact-list": [Check("GET", CONTACTS_PAGE)],
    "contact-import": [Check("GET", CONTACTS_PAGE)],
    "contact-export": [Check("GET", CONTACTS_PAGE)],
    "contact-import-page": [Check("GET", CONTACTS_PAGE)],
    "contact-import-progress": [Check("GET", CONTACTS_PAGE)],
    "contact-import-errors": [Check("GET", CONTACTS_PAGE)],
    "contact-import-retry": [Check("POST", obj(302, 404, 404, 404, 404, 302, 302), json_body=False)],
}
if not settings.CONVERSA_SANDBOX_SIMULATOR:
    TABLE["sandbox-messages"] = [Check("GET", everyone(404), query=lambda f, o: {"phone": "+5491155550001"})]
else:
    TABLE["sandbox-messages"] = [Check("GET", obj(200, 200, 200, 200, 200, 200, 200),
                                       query=lambda f, o: {"phone": f.objects[o]["conversation"].customer_phone})]

# The admin site: staff only; anonymous users and non-staff are sent to the admin login.
ADMIN_ONLY_KINDS = ("changelist", "add", "change", "delete", "history", "password_change")
ADMIN_PAGES: dict[str, Rule] = {
    "admin:index": glob(302, 302, 302, 302, 200),
    "admin:login": glob(200, 200, 200, 200, 302),
    "admin:logout": glob(302, 302, 302, 302, 302),  # POST: non-staff to the admin index, staff logged out
    "admin:password_change": glob(302, 302, 302, 302, 200),
    "admin:password_change_done": glob(302, 302, 302, 302, 200),
    "admin:jsi18n": glob(302, 302, 302, 302, 200),
    "admin:app_list": glob(302, 302, 302, 302, 200),
    "admin:autocomplete": glob(302, 302, 302, 302, 403),  # no field/model named: refused
    "admin:view_on_site": glob(302, 302, 302, 302, 404),  # Conversation has no public page
}


def admin_model(route: Route) -> tuple[type[models.Model], str] | None:
    name = route.key.removeprefix("admin:")
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix) and name[len(prefix):] in ADMIN_ONLY_KINDS:
            return model, name[len(prefix):]
    return None


# --------------------------------------------------------------------------- fixture objects
def _whatsapp_user(username: str, *, role: str = AgentProfile.Role.AGENT) -> User:
    user = get_user_model().objects.create_user(username, password="demo", first_name=username.title())
    AgentProfile.objects.create(user=user, role=role, group=AgentGroup.objects.get(name="WhatsApp agents"),
                                status=AgentProfile.Status.READY)
    return user


@pytest.fixture
def people(demo: dict[str, Any]) -> dict[str, User]:
    """The demo users, a supervisor of another campaign, and a Support agent to transfer Support work to."""
    supervisor2 = _whatsapp_user("supervisor2", role=AgentProfile.Role.SUPERVISOR)
    collections = Campaign.objects.create(name="Collections",
                                          contact_database=ContactDatabase.objects.create(name="Collections db"))
    collections.supervisors.add(supervisor2)
    Campaign.objects.get(name="Support").agents.add(_whatsapp_user("agent5"))
    return {u.username: u for u in get_user_model().objects.all()}


@pytest.fixture
def world(api: Any, customer_says: Callable[..., Conversation], demo: dict[str, Any],
          people: dict[str, User]) -> Fixture:
    users = people
    support_mate = users["agent5"]
    sales_mate = users["agent3"]

    def attended(owner: str, line: Line, phone: str, transfer_to: User) -> dict[str, Any]:
        conversation = customer_says("Hola", phone=phone, line=line)
        assert api(owner).post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
        identified = api(owner).post(f"/api/v1/conversations/{conversation.pk}/identify/",
                                     {"first_name": f"Customer of {owner}"}, format="json")
        assert identified.status_code == 200, identified.content
        upload = api(owner).post(f"/api/v1/conversations/{conversation.pk}/messages/",
                                 {"file": io.BytesIO(PNG), "text": "foto"}, format="multipart")
        assert upload.status_code == 201, upload.content
        conversation.refresh_from_db()
        failed_media = Message.objects.create(  # a customer's attachment that could not be downloaded
            conversation=conversation, line=line, direction=Message.Direction.INBOUND, kind=Message.Kind.IMAGE,
            media_provider_id="lost-media", provider_message_id=f"rbac-media-{phone}",
            status=Message.Status.RECEIVED, payload={"media_failed": True, "media_error": "HTTP 404"})
        unconfirmed = Message.objects.create(  # a reply the provider never confirmed, offered for resending
            conversation=conversation, line=line, direction=Message.Direction.OUTBOUND, body="¿Llegó?",
            status=Message.Status.UNCONFIRMED, resend_offered_at=conversation.created_at)
        contact_import = ContactImport.objects.create(  # a finished import into the campaign's database
            database=conversation.campaign.contact_database, file="contact-imports/rbac.csv",
            original_name="rbac.csv", file_format="csv", headers=["phone"], status=ContactImport.Status.DONE)
        template = MessageTemplate.objects.filter(line=line, status=MessageTemplate.Status.APPROVED).first()
        assert template is not None, line
        bulk_sends = {status: BulkSend.objects.create(  # a send of the line: running, and a paused one
            name=f"Bulk {status}", line=line, campaign=conversation.campaign, template=template,
            source=BulkSend.Source.DATABASE, status=status) for status in ("running", "paused")}
        return {"conversation": conversation, "contact": conversation.contact, "campaign": conversation.campaign,
                "contact_import": contact_import, "bulk_running": bulk_sends["running"],
                "bulk_paused": bulk_sends["paused"],
                "unconfirmed": unconfirmed,
                "failed_media": failed_media,
                "line": line, "transfer_to": transfer_to, "media": Message.objects.get(pk=upload.json()["id"]),
                "option": DispositionOption.objects.filter(campaign=conversation.campaign, form_fields=[])
                .order_by("id").first()}

    objects = {
        "own": attended("agent1", demo["sales_line"], "+5491155551001", sales_mate),
        "other_agent": attended("agent2", demo["sales_line"], "+5491155551002", sales_mate),
        "other_campaign": attended("agent3", demo["support_line"], "+5491155551003", support_mate),
    }
    for key in objects:
        assert objects[key]["option"] is not None
    return Fixture(objects, users)


def client_for(role: str, fixture: Fixture, *, fresh: bool = False) -> Client:
    """One logged-in client per role and test (a fresh one where the request logs out)."""
    if not fresh and role in fixture.clients:
        return fixture.clients[role]
    fixture.clients[role] = _new_client(role, fixture)
    return fixture.clients[role]


def _new_client(role: str, fixture: Fixture) -> Client:
    if role == "anonymous":
        return Client()
    user = fixture.users[role]
    client = Client(headers={"Authorization": f"Token {api_token(user.username)}"})
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def kwarg_values(route: Route, fixture: Fixture, key: str | None) -> dict[str, Any]:
    o = fixture.objects[key or "own"]
    name = route.key
    values: dict[str, Any] = {"conversation_id": o["conversation"].pk, "line_id": o["line"].pk, "kind": "sandbox",
                              "path": o["media"].media.name,
                              "token": signed_token(o["media"].media.name, display_name="foto.png")}
    values["database_id"] = o["campaign"].contact_database_id
    values["previous_id"] = o["conversation"].pk
    values["import_id"] = o["contact_import"].pk
    if name.startswith("api-contact") or name == "api-contact":
        values["pk"] = o["contact"].pk
    elif name.startswith("api-campaign") or name == "api-quick-replies":
        values["pk"] = o["campaign"].pk
    elif name == "api-line-templates":
        values["pk"] = o["line"].pk
    elif name in ("api-resend", "console-resend"):
        values["pk"], values["message_id"] = o["conversation"].pk, o["unconfirmed"].pk
    elif name.startswith(("bulk-", "api-bulk-send")):
        values["pk"] = o["bulk_paused" if name.endswith("resume") else "bulk_running"].pk
    elif name == "console-retry-media":
        values["pk"], values["message_id"] = o["conversation"].pk, o["failed_media"].pk
    elif "media" in name:
        values["pk"] = o["media"].pk
    else:
        values["pk"] = o["conversation"].pk
    return values


def send(client: Client, check: Check, path: str, fixture: Fixture, role: str, key: str | None) -> HttpResponseBase:
    body = check.body(fixture, (key or "own") if check.per_object else role) if check.body else {}
    if check.query:
        return client.get(path, check.query(fixture, key or "own"))
    if check.method == "GET":
        return client.get(path)
    if check.json_body:
        return client.generic(check.method, path, json.dumps(body), content_type="application/json")
    return client.post(path, body)


def run_cell(client: Client, check: Check, path: str, fixture: Fixture, role: str,
             key: str | None) -> HttpResponseBase:
    with transaction.atomic():
        response = send(client, check, path, fixture, role, key)
        transaction.set_rollback(True)
    return response


# --------------------------------------------------------------------------- the tests
ROUTES = all_routes()


def _group_key(route: Route) -> str:
    """Admin views of one model run as one test (the per-test database reset dominates their cost)."""
    found = admin_model(route) if route.key.startswith("admin:") else None
    if found:
        return f"admin:{found[0]._meta.label_lower}"
    legacy = re.fullmatch(r"admin/(\w+)/(\w+)/<path:object_id>/", route.route)  # old-style object URLs
    return f"admin:{legacy.group(1)}.{legacy.group(2)}" if legacy else route.key


GROUPS: dict[str, list[Route]] = {}
for _route in ROUTES:
    GROUPS.setdefault(_group_key(_route), []).append(_route)


def test_every_table_entry_is_a_live_url_pattern() -> None:
    """Stale rows would hide that an endpoint was renamed (and its new name went unchecked)."""
    live = {route.key for route in ROUTES}
    assert set(TABLE) - live == set()
    assert set(ADMIN_PAGES) - live == set()


@pytest.mark.parametrize("group", list(GROUPS))
def test_rbac_matrix(group: str, request: pytest.FixtureRequest) -> None:
    # Admin pages need only the people; the rest also the conversations, contacts and media.
    if group.startswith("admin:"):
        world = Fixture({}, request.getfixturevalue("people"))
    else:
        world = request.getfixturevalue("world")
    failures: list[str] = []
    for route in GROUPS[group]:
        failures += _check_route(route, world)
    assert not failures, "\n".join(failures)


def _check_route(route: Route, world: Fixture) -> list[str]:
    failures: list[str] = []
    checks: list[Check]
    model_kind = admin_model(route) if route.key.startswith("admin:") else None
    if route.key in TABLE:
        checks = TABLE[route.key]
    elif route.key in ADMIN_PAGES:
        checks = [Check("POST" if route.key == "admin:logout" else "GET", ADMIN_PAGES[route.key], json_body=False)]
    elif model_kind is not None:
        checks = [Check("GET", glob(302, 302, 302, 302, _admin_code(*model_kind)))]
    elif route.route.startswith("admin/") and route.route.endswith("<path:object_id>/"):
        checks = [Check("GET", glob(302, 302, 302, 302, 302))]  # old-style object URL → its change page
    elif route.route.startswith("admin/") and "(?P<url>" in route.route:  # the catch-all: unknown admin URLs
        checks = [Check("GET", glob(302, 302, 302, 302, 404))]
    else:
        pytest.fail(f"URL pattern {route.key!r} ({route.route}) is not classified in tests/security/"
                    "test_rbac_matrix.py TABLE: add its expected access rule.")
    for check in checks:
        keys: list[str | None] = list(OBJECTS) if check.per_object else [None]
        for key in keys:
            values = kwarg_values(route, world, key) if world.objects else {}
            if model_kind is not None:
                values.update(_admin_values(*model_kind))
            values.setdefault("url", "nothing-here/")
            values.setdefault("app_label", "inbox")
            values.setdefault("content_type_id", ContentType.objects.get_for_model(Conversation).pk)
            first_conversation = Conversation.objects.order_by("pk").values_list("pk", flat=True).first()
            values.setdefault("object_id", first_conversation or 0)
            path = build_path(route.route, values)
            for role in ROLES:
                relation = world.relation(role, key)
                expected = check.rule[relation]
                response = run_cell(client_for(role, world, fresh="logout" in route.key), check, path, world, role, key)
                got = response.status_code
                if got != expected:
                    failures.append(f"{check.method} {path} as {role} ({relation}, {key}): {got}, expected {expected}")
                elif got == 302 and role == "anonymous" and route.key not in ("logout", "set_language", "admin:logout"):
                    assert "login" in response["Location"], (path, response["Location"])
    return failures


def _admin_values(model: type[models.Model], kind: str) -> dict[str, Any]:
    instance = model._default_manager.order_by("pk").first()
    return {"object_id": instance.pk if instance is not None else 0, "id": instance.pk if instance is not None else 0}


def _admin_code(model: type[models.Model], kind: str) -> int:
    """What the admin gets: the page, unless the ModelAdmin refuses that action (403) or the object
    is missing (the admin redirects to the changelist)."""
    model_admin = admin.site._registry[model]
    factory_request = RequestFactory().get("/admin/")
    factory_request.user = get_user_model().objects.get(username="admin")
    if kind == "add" and not model_admin.has_add_permission(factory_request):
        return 403
    if kind == "delete" and not model_admin.has_delete_permission(factory_request):
        return 403
    if kind in ("change", "delete", "history") and not model._default_manager.exists():
        return 302
    return 200
