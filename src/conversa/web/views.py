"""Agent console and sandbox customer simulator.

Thin views: every rule lives in inbox.actions (writes) and inbox.selectors (visibility); these
views only turn form posts into action calls and render templates. Domain errors come back to
htmx as an `HX-Trigger: {"conversa:error": {...}}` header with the error's HTTP status, so the
page shows the service's own message (e.g. "Already taken by Martín Pérez.").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from conversa.accounts.selectors import (
    display_name,
    is_supervisor,
    require_whatsapp_access,
)
from conversa.campaigns.answers import labelled_answers
from conversa.campaigns.models import Disposition, DispositionOption
from conversa.campaigns.selectors import campaigns_for
from conversa.contacts.models import Contact
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.core.api import error_response, parse_id
from conversa.core.errors import DomainError, InvalidInput, NotAllowed
from conversa.inbox import selectors
from conversa.inbox.actions import assignment, closing, contacts, delivery, inbound, outbound, replies
from conversa.inbox.models import Conversation, Message
from conversa.inbox.serializers import SimulatorMessageSerializer
from conversa.inbox.window import is_window_open, window_expires_at
from conversa.web.agent_status import status_context
from conversa.web.template_params import param_specs_json
from conversa.web.views_lists import inbox_context
from conversa.web.views_thread import bulk_context, thread_context
from conversa.whatsapp.models import Line, MessageTemplate, Provider

ViewFunc = Callable[..., HttpResponse]


# --------------------------------------------------------------------------- plumbing
def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User) and not isinstance(user, AnonymousUser)
    return user


def _trigger(response: HttpResponse, events: dict[str, Any]) -> HttpResponse:
    # ASCII-only JSON: header values must be latin-1; the browser decodes the \u escapes.
    response["HX-Trigger"] = json.dumps(events, ensure_ascii=True)
    return response


def _error_response(exc: DomainError) -> HttpResponse:
    body = {"message": exc.message, "code": exc.code, "field": exc.field or ""}
    return _trigger(HttpResponse(exc.message, status=exc.status_code, content_type="text/plain"),
                    {"conversa:error": body})


def _htmx_view(method_check: Callable[[ViewFunc], ViewFunc], doc: str) -> Callable[[ViewFunc], ViewFunc]:
    def decorate(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except DomainError as exc:
                return _error_response(exc)

        return login_required(method_check(wrapper))

    decorate.__doc__ = doc
    return decorate


htmx_action = _htmx_view(require_POST, "Login required, POST only, domain errors → status + conversa:error trigger.")
htmx_read = _htmx_view(require_GET, "Login required, GET only, domain errors → status + conversa:error trigger.")


def _done(*events: str, **payload_events: Any) -> HttpResponse:
    triggers: dict[str, Any] = {e: True for e in events}
    triggers.update(payload_events)
    return _trigger(HttpResponse(status=204), triggers)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that link none (the API's, the admin's): the static icon."""
    return redirect(static("web/favicon.svg"), permanent=True)


# --------------------------------------------------------------------------- auth
class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


# --------------------------------------------------------------------------- console
@login_required
@require_GET
def console(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    user = _user(request)
    context = inbox_context(user, open_id=conversation_id)
    context["open_id"] = conversation_id
    context["can_start"] = not context["no_access"] and _visible_lines(user).exists()
    context["server_now"] = timezone.now()
    context["me_name"] = display_name(user)
    context["js_strings"] = _js_strings()
    context.update(status_context(user))  # the header's Ready / Paused / Offline control
    context["lists_html"], context["lists_sig"] = _lists_html(request, context)
    return render(request, "web/console.html", context)


def _js_strings() -> dict[str, str]:
    return {
        "empty_pane": _("Pick a conversation from the New tab to capture it, or from Mine to continue it."),
        "error": _("Something went wrong. Please try again."),
        "network_error": _("Connection problem: the action was not sent. Please try again."),
        "parameter": _("Parameter"),
        "existing_contact": _("Existing contact"),
        "no_contact": _("No contact with this number in the campaign's database: it will be created."),
        "no_results": _("No contacts found."),
        "left": _("left"),
        "live": _("Live"),
        "offline": _("Reconnecting…"),
        "connecting": _("Connecting…"),
        "reassigned_to": _("{by} reassigned this conversation to {agent}."),
        "notify_new": _("New conversation: {name}"),
        "notify_transfer": _("{by} transferred {name} to you"),
        "notify_assigned": _("{name} was assigned to you"),
        "notify_reassigned": _("{by} reassigned {name} to {agent}"),
        "notify_returned": _("{by} moved {name} to the general inbox"),
        "notify_reply": _("{name}: {text}"),
        "sound_on": _("Sound on: click to mute"),
        "sound_off": _("Sound off: click to turn it on"),
        "returned_to_inbox": _("{by} moved this conversation to the general inbox."),
    }


def _lists_html(request: HttpRequest, context: dict[str, Any]) -> tuple[str, str]:
    """The inbox lists' markup and its fingerprint: the page skips swaps that change nothing,
    so a row is never replaced under the agent's pointer for no reason."""
    html = render_to_string("web/partials/inbox_lists.html", context, request=request)
    return html, hashlib.sha1(html.encode(), usedforsecurity=False).hexdigest()


@htmx_read
def inbox_lists(request: HttpRequest) -> HttpResponse:
    """Both lists; `?open=<id>`: the conversation the agent has open (shown selected and read)."""
    context = inbox_context(_user(request), open_id=_int(request.GET.get("open")))
    html, sig = _lists_html(request, context)
    badges = render_to_string("web/partials/badges.html", context, request=request)
    response = HttpResponse(html + badges)
    response["X-Lists-Sig"] = sig
    return response


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _template_id(value: Any) -> int:
    template_id = _int(value)
    if template_id is None:
        raise InvalidInput(_("Choose a template."), field="template")
    return template_id


def _conversation_context(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    user = _user(request)
    mine = conversation.agent_id == user.pk
    # A supervisor on an agent's conversation reads it; she writes only after joining (announced).
    supervising = (not mine and conversation.agent_id is not None and is_supervisor(user)
                   and conversation.status != Conversation.Status.CLOSED)
    joined = supervising and selectors.supervisor_joined(conversation_id=conversation.pk, user=user)
    acting = conversation.status != Conversation.Status.CLOSED and (mine or joined)
    window_open = is_window_open(conversation)
    templates = list(MessageTemplate.objects.filter(line_id=conversation.line_id,
                                                    status=MessageTemplate.Status.APPROVED).order_by("name"))
    for template in templates:  # labelled and prefilled from the contact (web/template_params.py)
        template.param_specs = param_specs_json(template, conversation)  # type: ignore[attr-defined]
    disposition = (Disposition.objects.filter(conversation=conversation).select_related("option").first()
                   if conversation.status == Conversation.Status.CLOSED else None)  # shown on closed ones only
    return {
        "c": conversation,
        "mine": mine,
        "acting": acting,
        "supervising": supervising,
        "joined": joined,
        "window_open": window_open,
        "window_expires_at": window_expires_at(conversation),
        "templates": templates,
        "quick_replies": replies.quick_replies_for(conversation=conversation, user=user) if acting else [],
        "new_id": uuid.uuid4().hex,
        "disposition": disposition,
    }


@htmx_read
def conversation_pane(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    context = _conversation_context(request, conversation)
    context.update(thread_context(conversation))
    context.update(_side_context(request, conversation))
    context.update(bulk_context(conversation))
    return render(request, "web/partials/conversation.html", context)


@htmx_read
def conversation_messages(request: HttpRequest, pk: int) -> HttpResponse:
    """The thread's newest page, an earlier page (?before=) or all shown from a cursor (?from=)."""
    conversation = selectors.get_visible_conversation(_user(request), pk, with_related=False)
    return render(request, "web/partials/messages.html", thread_context(conversation, request.GET))


def _field_specs(conversation: Conversation, contact: Contact | None) -> list[dict[str, Any]]:
    specs = []
    for spec in conversation.campaign.contact_database.fields or []:
        value = (contact.custom or {}).get(spec["name"], "") if contact else ""
        specs.append({**spec, "value": value, "type": spec.get("type", "text")})
    return specs


def _side_context(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    contact = conversation.contact
    records: list[Disposition] = []
    if contact is not None:
        records = list(Disposition.objects.filter(contact=contact)
                       .select_related("campaign", "option", "agent").order_by("-created_at", "-id")[:100])
        for record in records:
            record.answers = labelled_answers(record)  # type: ignore[attr-defined]
    profile_first, _sep, profile_last = (conversation.customer_profile_name or "").partition(" ")
    return {
        "contact": contact,
        "fields": _field_specs(conversation, contact),
        "records": records,
        "profile_first": profile_first,
        "profile_last": profile_last,
        "c": conversation,
        "can_edit": conversation.status != Conversation.Status.CLOSED
        and (conversation.agent_id == _user(request).pk or is_supervisor(_user(request))),
    }


@htmx_action
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    """The console shows the agent her thread: nothing of it is unread any more."""
    replies.mark_read(conversation_id=pk, user=_user(request))
    return HttpResponse(status=204)


@htmx_read
def side_panel(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_visible_conversation(_user(request), pk)
    context = _side_context(request, conversation)
    context["tab"] = request.GET.get("tab", "contact")
    return render(request, "web/partials/side.html", context)


# --------------------------------------------------------------------------- actions
@htmx_action
def capture(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = assignment.capture(conversation_id=pk, agent=_user(request))
    return _done("conversa:lists", **{"conversa:open": {"id": conversation.pk, "tab": "mine"}})


@htmx_action
def retry_media(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    """Try again to download a customer's attachment that could not be had."""
    inbound.retry_media_download(conversation_id=pk, message_id=message_id, user=_user(request))
    return _done("conversa:thread")


@htmx_action
def resend(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    """The agent chose to send again a message the provider never confirmed."""
    delivery.resend_unconfirmed(conversation_id=pk, message_id=message_id, user=_user(request))
    return _done("conversa:thread")


@htmx_action
def send(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    client_id = (request.POST.get("client_message_id") or "").strip()[:60] or None
    text = request.POST.get("text", "")
    upload = request.FILES.get("file")
    if request.POST.get("quick_reply"):
        reply = replies.ReplyRequest(quick_reply=_int(request.POST["quick_reply"]), client_message_id=client_id)
    elif request.POST.get("template"):
        params = request.POST.getlist("params")
        # A file sent with a template is its media header.
        buttons = [v for v in request.POST.getlist("button_params") if v.strip()]
        reply = replies.ReplyRequest(template=_int(request.POST["template"]), params=params, media=upload,
                                     button_params=buttons, client_message_id=client_id)
    elif upload is not None or request.POST.get("quick_reply_file"):
        # Typed text goes with the file (chosen, or the quick reply's put in the composer) as its caption.
        reply = replies.ReplyRequest(media=upload, text=text.strip() or None, client_message_id=client_id,
                                     quick_reply_file=None if upload else parse_id(request.POST["quick_reply_file"],
                                                                                     field="quick_reply_file"))
    else:
        reply = replies.ReplyRequest(text=text, client_message_id=client_id)
    replies.send_reply(conversation_id=pk, agent=user, request=reply)
    return _done("conversa:sent", "conversa:thread")


def _contact_data(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in ("first_name", "last_name", "email"):
        if name in request.POST:
            data[name] = request.POST.get(name, "").strip()
    custom: dict[str, Any] = {}
    for spec in conversation.campaign.contact_database.fields or []:
        key = f"custom__{spec['name']}"
        if key in request.POST:
            custom[spec["name"]] = request.POST.get(key, "").strip()
    if custom:
        data["custom"] = custom
    return data


@htmx_action
def identify(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    contact_id = request.POST.get("contact")
    if contact_id:
        contacts.identify(conversation_id=pk, agent=user, contact_id=_int(contact_id) or 0)
    else:
        data = _contact_data(request, conversation)
        if not conversation.customer_phone and request.POST.get("phone", "").strip():
            data["phone"] = request.POST["phone"].strip()  # a customer known by user id only
        contacts.identify(conversation_id=pk, agent=user, data=data)
    return _done("conversa:pane", "conversa:lists", **{"conversa:toast": {"message": _("Contact saved.")}})


@htmx_action
def edit_contact(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    conversation = selectors.get_visible_conversation(user, pk)
    if conversation.contact_id is None:
        raise NotAllowed(_("Identify the contact first."))
    contacts.edit_contact(contact_id=conversation.contact_id, user=user, data=_contact_data(request, conversation))
    return _done("conversa:pane", "conversa:lists", **{"conversa:toast": {"message": _("Contact saved.")}})


@htmx_read
def transfer_dialog(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_visible_conversation(_user(request), pk)
    return render(request, "web/partials/transfer.html", {
        "c": conversation, "agents": assignment.transfer_targets(campaign=conversation.campaign,
                                                                 exclude_agent_id=conversation.agent_id),
        "campaigns": assignment.transfer_campaigns(conversation=conversation)})


@htmx_action
def transfer(request: HttpRequest, pk: int) -> HttpResponse:
    """`agent`: a user id, `inbox` (back to the campaign's general inbox) or `campaign:<id>` (that
    campaign's general inbox); `note` is shown in the thread."""
    target, note = request.POST.get("agent", ""), request.POST.get("note", "")
    if target == "inbox" or target.startswith("campaign:"):
        campaign_id = None if target == "inbox" else (_int(target.partition(":")[2]) or 0)
        conversation = assignment.return_to_inbox(conversation_id=pk, user=_user(request), note=note,
                                                  campaign_id=campaign_id)
        message = _("Sent to the general inbox of %(campaign)s.") % {"campaign": conversation.campaign.name}
    else:
        conversation = assignment.transfer(conversation_id=pk, user=_user(request), note=note,
                                           target_agent_id=_int(target) or 0)
        name = display_name(conversation.agent) if conversation.agent else ""
        message = _("Transferred to %(name)s.") % {"name": name}
    return _done("conversa:lists", "conversa:closeDialogs",
                 **{"conversa:left": {"id": pk}, "conversa:toast": {"message": message}})


@htmx_read
def close_dialog(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_visible_conversation(_user(request), pk)
    options = list(DispositionOption.objects.filter(campaign=conversation.campaign, active=True)
                   .order_by("order", "name"))
    return render(request, "web/partials/close.html", {"c": conversation, "options": options})


@htmx_action
def close(request: HttpRequest, pk: int) -> HttpResponse:
    option_id = request.POST.get("disposition")
    form: dict[str, Any] = {}
    for key in request.POST:
        prefix = f"form__{option_id}__"
        if key.startswith(prefix):
            form[key[len(prefix):]] = request.POST.get(key, "")
    option = DispositionOption.objects.filter(pk=_int(option_id) or 0).first()
    if option is not None:
        for spec in option.form_fields or []:  # unchecked boxes are absent from the post
            if spec.get("type") == "boolean":
                form[spec["name"]] = bool(form.get(spec["name"]))
    follow_up = None
    raw_follow_up = request.POST.get("follow_up_at", "").strip()
    if raw_follow_up:
        follow_up = parse_datetime(raw_follow_up)
    closing.close(conversation_id=pk, user=_user(request), option_id=_int(option_id) or 0,
                  notes=request.POST.get("notes", ""), sub_option=request.POST.get("sub_option", ""),
                  form=form or None, follow_up_at=follow_up)
    return _done("conversa:lists", "conversa:closeDialogs", "conversa:pane",
                 **{"conversa:toast": {"message": _("Conversation closed.")}})


def _visible_lines(user: AbstractBaseUser) -> Any:
    return Line.objects.filter(active=True, campaign__in=campaigns_for(user)) \
        .select_related("campaign__contact_database").order_by("number")


@htmx_read
def new_conversation_dialog(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_whatsapp_access(user)
    lines = list(_visible_lines(user))
    templates = list(MessageTemplate.objects.filter(line__in=lines, status=MessageTemplate.Status.APPROVED)
                     .order_by("name"))
    return render(request, "web/partials/new_conversation.html", {"lines": lines, "templates": templates})


@htmx_action
def start_conversation(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    line = _visible_lines(user).filter(pk=_int(request.POST.get("line")) or 0).first()
    contact_data: dict[str, Any] | None = None
    if line is not None and request.POST.get("create_contact"):
        contact_data = {k: request.POST.get(k, "").strip() for k in ("first_name", "last_name", "email")}
        custom = {}
        for spec in line.campaign.contact_database.fields or []:
            value = request.POST.get(f"custom__{line.campaign.contact_database_id}__{spec['name']}", "").strip()
            if value:
                custom[spec["name"]] = value
        if custom:
            contact_data["custom"] = custom
    conversation = outbound.start_outbound(
        agent=user, line_id=_int(request.POST.get("line")) or 0, phone=request.POST.get("phone", ""),
        template_id=_template_id(request.POST.get("template")), params=request.POST.getlist("params"),
        contact_data=contact_data, header_file=request.FILES.get("file"),
        button_params=[v for v in request.POST.getlist("button_params") if v.strip()])
    return _done("conversa:lists", "conversa:closeDialogs",
                 **{"conversa:open": {"id": conversation.pk, "tab": "mine"}})


# --------------------------------------------------------------------------- sandbox simulator
def _sandbox_lines() -> Any:
    if not settings.CONVERSA_SANDBOX_SIMULATOR:
        raise Http404("The sandbox simulator is turned off.")
    return Line.objects.filter(active=True, provider__kind=Provider.Kind.SANDBOX).select_related("campaign", "provider")


def sandbox(request: HttpRequest) -> HttpResponse:
    """The demo's customer simulator: no login, sandbox lines only."""
    lines = list(_sandbox_lines().order_by("number"))
    strings = {
        "live": _("Live"), "offline": _("Reconnecting…"), "connecting": _("Connecting…"),
        "chatting_as": _("You are writing as"), "say_hello": _("Say hello: type a message below."),
        "signed_line": _("This line's provider has a webhook secret: the simulator cannot sign its messages, "
                         "so the line refuses them. Remove the secret (admin: Providers) or choose another line."),
    }
    return render(request, "web/sandbox.html", {"lines": lines, "js_strings": strings})


@require_GET
def sandbox_messages(request: HttpRequest, line_id: int) -> JsonResponse:
    line = _sandbox_lines().filter(pk=line_id).first()
    if line is None:
        raise Http404
    try:
        phone = normalize_phone(request.GET.get("phone", ""), strict=False)
    except InvalidPhone as exc:
        return error_response(status_code=400, code="invalid", message=str(exc), field="phone")
    messages = list(
        Message.objects.filter(line=line, conversation__customer_phone=phone)
        .select_related("template").order_by("-created_at", "-id")[:200]
    )
    messages.reverse()
    return JsonResponse({
        "phone": phone,
        "line": {"id": line.pk, "number": line.number, "name": line.name},
        "messages": SimulatorMessageSerializer(messages, many=True).data,
    })
