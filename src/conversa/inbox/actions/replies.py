"""What an agent sends in her conversation — a text, a quick reply (placeholders filled in), an
approved template with its parameters, or a file — and marking the thread read."""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from conversa.accounts.selectors import display_name, is_supervisor
from conversa.campaigns.models import QuickReply
from conversa.core import media as stored_media
from conversa.core.errors import InvalidInput, NotAllowed, NotFound, WindowClosed
from conversa.inbox import audit
from conversa.inbox.actions.common import CheckedUpload, owned_conversation, queue_outbound
from conversa.inbox.actions.expiry import reactivate
from conversa.inbox.events import publish_conversation
from conversa.inbox.models import AuditEntry, Conversation, Message
from conversa.inbox.selectors import get_visible_conversation, supervisor_joined
from conversa.inbox.window import is_window_open
from conversa.realtime import event_types
from conversa.whatsapp.models import Line, MessageTemplate

PLACEHOLDER = re.compile(r"\{(contact|agent|campaign|customer)\.(\w+)\}")
# WhatsApp's limits (Meta Cloud API, docs/decisions.md): a text message's body, a media caption, and
# a template body parameter (Meta allows 32,768 only when the template has nothing but a body; 1,024
# holds for every template). Parameters may not hold new lines, tabs or over four spaces in a row
# (Meta error 132018).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_TEMPLATE_PARAM = 1024
PARAM_FORBIDDEN = re.compile(r"[\n\t]| {5,}")


def render_quick_reply(body: str, conversation: Conversation, agent: User) -> str:
    contact = conversation.contact
    profile_first = (conversation.customer_profile_name or "").split(" ")[0]
    values = {
        ("contact", "first_name"): contact.first_name if contact else profile_first,
        ("contact", "last_name"): contact.last_name if contact else "",
        ("contact", "full_name"): contact.full_name if contact else conversation.customer_profile_name,
        ("contact", "email"): contact.email if contact else "",
        ("contact", "phone"): conversation.customer_phone,
        ("customer", "name"): conversation.customer_name,
        ("customer", "phone"): conversation.customer_phone,
        ("agent", "first_name"): getattr(agent, "first_name", "") or agent.get_username(),
        ("agent", "full_name"): display_name(agent),
        ("campaign", "name"): conversation.campaign.name,
    }

    def fill(match: re.Match[str]) -> str:
        key = (match.group(1), match.group(2))
        if key in values:
            return str(values[key])
        if key[0] == "contact" and contact is not None:
            return str((contact.custom or {}).get(key[1], ""))
        return match.group(0)

    return PLACEHOLDER.sub(fill, body)


def validate_params(template: MessageTemplate, params: list[str] | None) -> list[str]:
    """The template's parameters, checked against its count and WhatsApp's limits."""
    if params is None:
        params = []
    if not isinstance(params, list) or not all(isinstance(p, str | int | float) for p in params):
        raise InvalidInput(_("params must be a list of strings."), field="params")
    cleaned = [str(p).strip() for p in params]
    if len(cleaned) != template.param_count:
        raise InvalidInput(
            _("Template '%(template)s' takes %(expected)d parameter(s); %(given)d given.")
            % {"template": template.name, "expected": template.param_count, "given": len(cleaned)},
            field="params",
        )
    if any(not p for p in cleaned):
        raise InvalidInput(_("Template parameters cannot be empty."), field="params")
    for index, param in enumerate(cleaned):
        if len(param) > MAX_TEMPLATE_PARAM:
            raise InvalidInput(_("Each template parameter can be at most %(limit)d characters.")
                               % {"limit": MAX_TEMPLATE_PARAM}, field=f"params[{index}]")
        if PARAM_FORBIDDEN.search(param):
            raise InvalidInput(_("Template parameters cannot contain line breaks, tabs or more than four "
                                 "spaces in a row."), field=f"params[{index}]")
    if len(template.render(cleaned)) > MAX_TEXT:
        raise InvalidInput(_("With these parameters the message is longer than %(limit)d characters.")
                           % {"limit": MAX_TEXT}, field="params")
    return cleaned


def approved_template(line: Line, template_id: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(pk=template_id, line=line).first()
    if template is None:
        raise NotFound(_("Template %(template)s does not exist on line %(line)s.")
                       % {"template": template_id, "line": line.number})
    if template.status != MessageTemplate.Status.APPROVED:
        raise InvalidInput(_("Template '%(template)s' is %(status)s, not approved.")
                           % {"template": template.name, "status": template.status}, field="template")
    return template


@dataclass
class ReplyRequest:
    text: str | None = None
    quick_reply: int | None = None
    template: int | None = None
    params: list[str] | None = None
    media: UploadedFile | None = None
    # The file of this quick reply, with `text` (the reply as the agent edited it) as its caption.
    quick_reply_file: int | None = None
    client_message_id: str | None = None
    reply_to: int | None = None
    button_params: list[str] | None = None


def check_upload(upload: UploadedFile) -> CheckedUpload:
    """Which WhatsApp media kind an upload is, from its sniffed content, enforcing size and type
    limits. Text files (no magic bytes) count as text only when declared so and really UTF-8 text."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    sniffed = stored_media.sniff_upload(upload, declared_mime=declared)
    accepted = stored_media.whatsapp_kind(sniffed.mime)
    if accepted is not None:
        kind, limit = accepted
        if upload.size is not None and upload.size > limit:
            label = str(dict(Message.Kind.choices).get(kind, kind.title()))
            raise InvalidInput(
                _("%(kind)s files can be at most %(limit)d MB (this one is %(size).1f MB).")
                % {"kind": label, "limit": limit // (1024 * 1024), "size": upload.size / (1024 * 1024)},
                field="file")
        return CheckedUpload(upload=upload, kind=kind, sniffed=sniffed)
    allowed = {mime for _limit, types in settings.CONVERSA_MEDIA_LIMITS.values() for mime in types}
    if declared.startswith("image/") and declared in allowed:
        raise InvalidInput(_("The file is not a real %(mime)s image.") % {"mime": declared}, field="file")
    mime = sniffed.mime if sniffed.known else declared
    raise InvalidInput(_("Files of type '%(mime)s' cannot be sent on WhatsApp.") % {"mime": mime or _("unknown")},
                       field="file")


def template_buttons(*, template: MessageTemplate, values: list[str] | None) -> dict[str, list[dict[str, object]]]:
    """The variable parts of the template's buttons, as the send needs them: each dynamic URL button
    ({{1}} in its URL) takes the next of `values`; each quick-reply button sends back its text."""
    buttons: list[dict[str, object]] = []
    given = [str(v).strip() for v in values or []]
    dynamic = 0
    for index, button in enumerate(template.buttons or []):
        kind = str(button.get("type") or "").upper() if isinstance(button, dict) else ""
        if kind == "URL" and "{{" in str(button.get("url") or ""):
            if dynamic >= len(given) or not given[dynamic]:
                raise InvalidInput(_("Template '%(template)s' needs a value for its link button '%(button)s'.")
                                   % {"template": template.name, "button": button.get("text") or index + 1},
                                   field="button_params")
            buttons.append({"index": index, "sub_type": "url", "value": given[dynamic]})
            dynamic += 1
        elif kind == "QUICK_REPLY":
            buttons.append({"index": index, "sub_type": "quick_reply", "value": str(button.get("text") or "")})
    if dynamic != len(given):
        raise InvalidInput(_("Template '%(template)s' has %(expected)d link button(s) with a value; %(given)d given.")
                           % {"template": template.name, "expected": dynamic, "given": len(given)},
                           field="button_params")
    return {"buttons": buttons} if buttons else {}


# A template's media header as synced from the provider (whatsapp sync stores "[image]" etc.).
MEDIA_HEADERS = {"[image]": "image", "[video]": "video", "[document]": "document"}


def _template_header(template: MessageTemplate, upload: UploadedFile | None) -> CheckedUpload | None:
    """The file a template with a media header needs (sent as its header); none for the others."""
    wanted = MEDIA_HEADERS.get(template.header.strip().lower())
    if wanted is None:
        if upload is not None:
            raise InvalidInput(_("Template '%(template)s' has no media header: send it without a file.")
                               % {"template": template.name}, field="file")
        return None
    label = str(dict(Message.Kind.choices)[wanted]).lower()
    if upload is None:
        raise InvalidInput(_("Template '%(template)s' needs a header file (%(kind)s).")
                           % {"template": template.name, "kind": label}, field="file")
    checked = check_upload(upload)
    if checked.kind != wanted:
        raise InvalidInput(_("Template '%(template)s' needs a header file (%(kind)s).")
                           % {"template": template.name, "kind": label}, field="file")
    return checked


@dataclass
class PreparedTemplate:
    body: str
    payload: dict[str, object]
    header: CheckedUpload | None


def prepare_template(*, template: MessageTemplate, params: list[str] | None, header_file: UploadedFile | None,
                     button_params: list[str] | None) -> PreparedTemplate:
    """A template checked as sent: its parameters, its media header file and its link button values
    (a 400 names the field). The same for a reply and for a new conversation."""
    cleaned = validate_params(template, params)
    header = _template_header(template, header_file)
    payload: dict[str, object] = {"params": cleaned, **({"header_kind": header.kind} if header else {}),
                                  **template_buttons(template=template, values=button_params)}
    return PreparedTemplate(body=template.render(cleaned), payload=payload, header=header)


def send_reply(*, conversation_id: int, agent: User, request: ReplyRequest) -> tuple[Message, bool]:
    """The agent writes in her conversation. Returns (message, created); a repeated
    client_message_id returns the first message instead of sending twice."""
    # With a file, text is its caption; with a template, the file is its media header.
    with_file = request.media is not None or request.quick_reply_file is not None
    text = None if with_file else request.text
    media = request.media if request.template is None else None
    chosen = [x for x in (text, request.quick_reply, request.template, media, request.quick_reply_file)
              if x not in (None, "")]
    if len(chosen) != 1:
        raise InvalidInput(_("Send exactly one of: text, quick_reply, template, file."), field="text")
    with transaction.atomic():
        # A supervisor may send a template in a general inbox conversation (reactivating an expired
        # one nobody captured); an agent's conversation is hers alone.
        # A supervisor who joined an agent's conversation (announced in its thread) writes in it too.
        supervisor = is_supervisor(agent)
        conversation = owned_conversation(conversation_id=conversation_id, user=agent, allow_supervisor=supervisor)
        if conversation.agent_id is None and request.template is None:
            raise NotAllowed(_("Capture this conversation before acting on it."))
        if conversation.agent_id not in (None, agent.pk) and not supervisor_joined(conversation_id=conversation.pk,
                                                                                   user=agent):
            if supervisor:
                raise NotAllowed(_("Join the conversation to write in it."))
            raise NotFound(_("Conversation not found."))
        if request.client_message_id:
            existing = conversation.messages.filter(client_message_id=request.client_message_id).first()
            if existing:
                return existing, False
        reply_to = None
        if request.reply_to:
            reply_to = conversation.messages.filter(pk=request.reply_to).first()
            if reply_to is None:
                raise InvalidInput(_("reply_to is not a message of this conversation."), field="reply_to")
        if request.template is not None:
            template = approved_template(conversation.line, request.template)
            prepared = prepare_template(template=template, params=request.params, header_file=request.media,
                                        button_params=request.button_params)
            message = queue_outbound(
                conversation=conversation, sender=agent, kind=Message.Kind.TEMPLATE, body=prepared.body,
                template=template, payload=prepared.payload, media=prepared.header,
                client_message_id=request.client_message_id,
            )
            reactivate(conversation=conversation, actor=agent, via="template")
        else:
            if not is_window_open(conversation):
                raise WindowClosed(
                    _("More than 24 hours have passed since the customer's last message: "
                      "only an approved template can be sent now."), field="template")
            if request.quick_reply is not None:
                quick_reply = _quick_reply(request.quick_reply, conversation=conversation)
                body = render_quick_reply(quick_reply.body, conversation, agent)
                if quick_reply.attachment:
                    message = _queue_media(conversation=conversation, agent=agent, reply_to=reply_to,
                                           upload=_stored_file(quick_reply), caption=body, field="quick_reply",
                                           payload={"quick_reply": quick_reply.pk}, client_id=request.client_message_id)
                else:
                    if len(body) > MAX_TEXT:
                        raise InvalidInput(_("This quick reply, filled in, is longer than WhatsApp's %(limit)d "
                                             "characters.") % {"limit": MAX_TEXT}, field="quick_reply")
                    message = queue_outbound(conversation=conversation, sender=agent, kind=Message.Kind.TEXT,
                                             body=body, payload={"quick_reply": quick_reply.pk},
                                             client_message_id=request.client_message_id, reply_to=reply_to)
            elif request.quick_reply_file is not None:
                quick_reply = _quick_reply(request.quick_reply_file, conversation=conversation)
                if not quick_reply.attachment:
                    raise InvalidInput(_("This quick reply has no file."), field="quick_reply_file")
                message = _queue_media(conversation=conversation, agent=agent, reply_to=reply_to,
                                       upload=_stored_file(quick_reply), caption=request.text or "", field="text",
                                       payload={"quick_reply": quick_reply.pk}, client_id=request.client_message_id)
            elif request.media is not None:
                message = _queue_media(conversation=conversation, agent=agent, reply_to=reply_to,
                                       upload=request.media, caption=request.text or "", field="text",
                                       payload=None, client_id=request.client_message_id)
            else:
                text = str(request.text).strip()
                if not text:
                    raise InvalidInput(_("text cannot be empty."), field="text")
                if len(text) > MAX_TEXT:
                    raise InvalidInput(_("WhatsApp texts can be at most 4096 characters."), field="text")
                message = queue_outbound(conversation=conversation, sender=agent, kind=Message.Kind.TEXT, body=text,
                                         client_message_id=request.client_message_id, reply_to=reply_to)
        audit.record(kind=AuditEntry.Kind.MESSAGE_SENT, actor=agent, conversation=conversation,
                     message=message.pk, message_kind=message.kind)
    return message, True


def quick_replies_for(*, conversation: Conversation, user: User) -> list[dict[str, object]]:
    """The campaign's active quick replies as the composer offers them: filled in for this
    conversation (the agent edits the text before sending), with the name of their file, if any."""
    return [{"id": q.pk, "title": q.title, "text": render_quick_reply(q.body, conversation, user),
             "file": os.path.basename(q.attachment.name) if q.attachment else ""}
            for q in conversation.campaign.quick_replies.filter(active=True).order_by("title")]


def _quick_reply(quick_reply_id: int, *, conversation: Conversation) -> QuickReply:
    quick_reply = QuickReply.objects.filter(pk=quick_reply_id, campaigns=conversation.campaign, active=True).first()
    if quick_reply is None:
        raise NotFound(_("Quick reply not found for this campaign."))
    return quick_reply


def _stored_file(quick_reply: QuickReply) -> UploadedFile:
    """A quick reply's stored file as an upload, checked and stored for the message like one."""
    with quick_reply.attachment.open("rb") as stored:
        content = stored.read()
    name = os.path.basename(quick_reply.attachment.name)
    return SimpleUploadedFile(name, content, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")


def _queue_media(*, conversation: Conversation, agent: User, reply_to: Message | None, upload: UploadedFile,
                 caption: str, field: str, payload: dict[str, object] | None, client_id: str | None) -> Message:
    if len(caption) > MAX_CAPTION:
        raise InvalidInput(_("WhatsApp captions can be at most %(limit)d characters.") % {"limit": MAX_CAPTION},
                           field=field)
    checked = check_upload(upload)
    return queue_outbound(conversation=conversation, sender=agent, kind=checked.kind, body=caption, media=checked,
                          payload=payload, client_message_id=client_id, reply_to=reply_to)


def mark_read(*, conversation_id: int, user: User) -> Conversation:
    """The assigned agent opened the thread: nothing unread any more. A POST (opening the thread
    in the console or an API client says so); only her own unread count changes, and her other
    screens learn it. Anyone else who may see the conversation: a no-op."""
    with transaction.atomic():
        conversation = get_visible_conversation(user, conversation_id)
        cleared = Conversation.objects.filter(pk=conversation.pk, agent=user.pk, unread_count__gt=0).update(
            unread_count=0)
        if cleared:
            conversation.unread_count = 0
            publish_conversation(event_types.CONVERSATION_READ, conversation)
            if conversation.line.send_read_receipts:
                from conversa.inbox import tasks  # the task module imports these actions

                conversation_pk = conversation.pk
                transaction.on_commit(lambda: tasks.send_read_receipt.enqueue(conversation_pk))
    return conversation
