"""Business rules of a WhatsApp conversation. One verb per function, one transaction each,
events published on commit (through realtime.publish)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User as UserModel
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversa.accounts.selectors import display_name, has_whatsapp_skill, is_supervisor
from conversa.campaigns.models import Campaign, Disposition, DispositionOption, QuickReply
from conversa.contacts.models import Contact
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.contacts.services import ContactError, ContactExists, create_contact, update_contact
from conversa.core import media as stored_media
from conversa.core.errors import Conflict, InvalidInput, NotAllowed, NotFound, WindowClosed
from conversa.inbox.events import publish_conversation, publish_message
from conversa.inbox.models import Conversation, AuditEntry, Message
from conversa.inbox.selectors import (
    campaigns_for,
    may_edit_contact,
    may_know,
    name_for,
    require_whatsapp_access,
)
from conversa.inbox.window import is_window_open
from conversa.realtime import groups
from conversa.whatsapp.adapters.base import WINDOW_CLOSED, InboundMessage, ListRow, OutboundList, StatusUpdate
from conversa.whatsapp.models import (
    InteractiveMenu,
    Line,
    MenuOption,
    MessageTemplate,
    OutOfHours,
    PendingStatus,
)

logger = logging.getLogger(__name__)
User = get_user_model()

STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}
# A failure can only follow a message nobody has received yet.
FAILABLE = [Message.Status.QUEUED, Message.Status.SENT]
WINDOW_CLOSED_TEXT = "Window closed — send a template"


def _failure_title(*, reason: str, title: str) -> str:
    """What the agent reads on a failed message: ours for a reason we know (the adapter's
    vendor-neutral `error_reason`; the provider's raw code stays in error_code), else the provider's."""
    return WINDOW_CLOSED_TEXT if reason == WINDOW_CLOSED else title


def _audit(kind: str, *, actor: Any = None, conversation: Conversation | None = None,
           contact: Contact | None = None, **data: Any) -> None:
    AuditEntry.objects.create(
        kind=kind, actor=actor if actor and actor.is_authenticated else None,
        conversation=conversation, contact=contact or (conversation.contact if conversation else None),
        data=data,
    )


def _preview(text: str) -> str:
    return text.replace("\n", " ")[:200]


# --------------------------------------------------------------------------- inbound
def _open_conversation_for(line: Line, phone: str, profile_name: str) -> tuple[Conversation, bool]:
    """The customer's open conversation on the line, or a new one in the general inbox."""
    existing = (
        Conversation.objects.select_for_update()
        .filter(line=line, customer_phone=phone)
        .exclude(status=Conversation.Status.CLOSED)
        .first()
    )
    if existing:
        return existing, False
    campaign = line.campaign
    contact = Contact.objects.filter(database_id=campaign.contact_database_id, phone=phone).first()
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                line=line, campaign=campaign, customer_phone=phone, customer_profile_name=profile_name,
                contact=contact,
            )
    except IntegrityError:
        # Another message of the same customer opened it first: join that one.
        return Conversation.objects.select_for_update().get(
            line=line, customer_phone=phone, status__in=[Conversation.Status.NEW, Conversation.Status.ATTENDED]
        ), False
    return conversation, True


def receive_inbound(line: Line, inbound: InboundMessage) -> Message | None:
    """Store a customer's message once (None when it was already stored: a replay)."""
    if Message.objects.filter(line=line, provider_message_id=inbound.provider_message_id).exists():
        return None
    try:
        phone = normalize_phone(inbound.from_phone, strict=False)
    except InvalidPhone:
        # Never drop a customer's message over formatting: keep what the provider sent.
        phone = "+" + "".join(ch for ch in inbound.from_phone if ch.isdigit())
    now = timezone.now()
    with transaction.atomic():
        conversation, created = _open_conversation_for(line, phone, inbound.profile_name)
        reply_to = None
        if inbound.reply_to_provider_id:
            reply_to = Message.objects.filter(line=line, provider_message_id=inbound.reply_to_provider_id).first()
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation, line=line, direction=Message.Direction.INBOUND,
                    kind=inbound.kind, body=inbound.body, payload=inbound.payload,
                    media_provider_id=inbound.media_id, media_mime=inbound.media_mime,
                    media_filename=stored_media.clean_display_name(inbound.media_filename),
                    provider_message_id=inbound.provider_message_id,
                    status=Message.Status.RECEIVED, provider_timestamp=inbound.timestamp or now,
                    reply_to=reply_to,
                )
        except IntegrityError:
            return None  # a concurrent delivery of the same webhook stored it
        conversation.last_inbound_at = now
        conversation.last_message_at = now
        conversation.last_message_preview = _preview(inbound.body or f"[{inbound.kind}]")
        if inbound.profile_name:
            conversation.customer_profile_name = inbound.profile_name
        # The row is locked (or was just created by us), so the in-memory count is exact.
        conversation.unread_count += 1
        conversation.save(update_fields=["last_inbound_at", "last_message_at", "last_message_preview",
                                         "customer_profile_name", "unread_count"])
        in_hours = not created or line.time_group is None or line.time_group.is_open(now)
        enters_menu = created and in_hours and line.menu_id is not None
        if enters_menu:
            conversation.status = Conversation.Status.MENU
            conversation.menu_id = line.menu_id
            conversation.save(update_fields=["status", "menu"])
        if created:
            _audit(AuditEntry.Kind.CREATED, conversation=conversation, via="inbound", in_hours=in_hours)
            publish_conversation("conversation.created", conversation)
        publish_message("message.created", message)
        if created and not in_hours:
            _answer_out_of_hours(conversation, line, now)
        if enters_menu:
            if line.welcome_message:
                _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=line.welcome_message)
            assert line.menu is not None
            _send_menu(conversation, line.menu)
        elif not created and conversation.status == Conversation.Status.MENU:
            _answer_menu(conversation, inbound)
        elif created and conversation.status != Conversation.Status.CLOSED:
            if conversation.campaign.routing != Campaign.Routing.MANUAL:
                campaign_id = conversation.campaign_id
                transaction.on_commit(lambda: _distribute_safely(campaign_id=campaign_id))
            if in_hours and line.welcome_message:
                _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=line.welcome_message)
        if inbound.media_id:
            from conversa.inbox import tasks

            transaction.on_commit(lambda: tasks.fetch_inbound_media.enqueue(message.pk))
    return message


OUT_OF_HOURS_REPEAT = datetime.timedelta(hours=1)


def _answer_out_of_hours(conversation: Conversation, line: Line, now: datetime.datetime) -> None:
    """Outside the line's business hours: tell the customer (at most once an hour), then keep the
    conversation waiting in the general inbox or close it, as the line says."""
    already_told = Message.objects.filter(
        line=line, conversation__customer_phone=conversation.customer_phone, direction=Message.Direction.OUTBOUND,
        payload__system="out_of_hours", created_at__gte=now - OUT_OF_HOURS_REPEAT,
    ).exists()
    if line.out_of_hours_message and not already_told:
        _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=line.out_of_hours_message,
                        payload={"system": "out_of_hours"})
    if line.out_of_hours_action == OutOfHours.CLOSE:
        _close_by_system(conversation, reason="out_of_hours")


def _close_by_system(conversation: Conversation, **why: Any) -> None:
    """Close a conversation nobody works on (out of hours, a menu's closing option)."""
    conversation.status = Conversation.Status.CLOSED
    conversation.closed_at = timezone.now()
    conversation.closed_by_system = True
    conversation.menu = None
    conversation.unread_count = 0
    conversation.save(update_fields=["status", "closed_at", "closed_by_system", "menu", "unread_count"])
    _audit(AuditEntry.Kind.CLOSED, conversation=conversation, **why)
    publish_conversation("conversation.closed", conversation)


# --------------------------------------------------------------------------- interactive menu
def _option_id(option: MenuOption) -> str:
    return f"menu-{option.menu_id}-option-{option.pk}"


def _send_menu(conversation: Conversation, menu: InteractiveMenu) -> None:
    rows = [ListRow(id=_option_id(o), title=o.title, description=o.description) for o in menu.options.all()]
    menu_list = OutboundList(body=menu.body, button=menu.button, rows=rows, header=menu.header, footer=menu.footer)
    _queue_outbound(conversation, sender=None, kind=Message.Kind.INTERACTIVE, body=menu_list.as_text(),
                    payload={"system": "menu", "menu": menu.pk, "list": dataclasses.asdict(menu_list)})


def _chosen_option(menu: InteractiveMenu, inbound: InboundMessage) -> MenuOption | None:
    """The option the customer picked: a list reply's id, or typing its number or its title."""
    options = list(menu.options.all())
    for option in options:
        if inbound.reply_id and _option_id(option) == inbound.reply_id:
            return option
    typed = inbound.body.strip().rstrip(".").lower()
    if typed.isdigit() and 1 <= int(typed) <= len(options):
        return options[int(typed) - 1]
    return next((o for o in options if o.title.lower() == typed), None)


def _answer_menu(conversation: Conversation, inbound: InboundMessage) -> None:
    menu = conversation.menu
    if menu is None:  # the menu was deleted meanwhile
        _route_to_campaign(conversation, conversation.line.campaign, reason="menu_removed")
        return
    option = _chosen_option(menu, inbound)
    if option is None:
        if menu.wrong_choice_message:
            _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=menu.wrong_choice_message)
        _send_menu(conversation, menu)
        return
    if option.action == MenuOption.Action.SUBMENU and option.submenu is not None:
        conversation.menu = option.submenu
        conversation.save(update_fields=["menu"])
        _send_menu(conversation, option.submenu)
    elif option.action == MenuOption.Action.CLOSE:
        if option.closing_message:
            _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=option.closing_message)
        _close_by_system(conversation, reason="menu", option=option.title)
    else:
        if menu.handoff_message:
            _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=menu.handoff_message)
        _route_to_campaign(conversation, option.campaign or conversation.line.campaign, reason="menu",
                           option=option.title)


def _route_to_campaign(conversation: Conversation, campaign: Campaign, **why: Any) -> None:
    """The menu is done: the conversation enters the campaign's general inbox."""
    conversation.campaign = campaign
    conversation.status = Conversation.Status.NEW
    conversation.menu = None
    if conversation.contact_id is None:
        conversation.contact = Contact.objects.filter(database_id=campaign.contact_database_id,
                                                      phone=conversation.customer_phone).first()
    conversation.save(update_fields=["campaign", "status", "menu", "contact"])
    _audit(AuditEntry.Kind.ROUTED, conversation=conversation, campaign=campaign.name, **why)
    publish_conversation("conversation.created", conversation)
    if campaign.routing != Campaign.Routing.MANUAL:
        transaction.on_commit(lambda: _distribute_safely(campaign_id=campaign.pk))


def route_menu_timeouts() -> int:
    """Customers who did not choose within the menu's timeout go to the line's campaign."""
    now = timezone.now()
    routed = 0
    waiting = (Conversation.objects.filter(status=Conversation.Status.MENU)
               .select_related("menu", "line__campaign", "line__provider"))
    for candidate in waiting:
        timeout = datetime.timedelta(minutes=candidate.menu.timeout_minutes if candidate.menu else 0)
        if (candidate.last_inbound_at or candidate.created_at) > now - timeout:
            continue
        with transaction.atomic():
            conversation = (Conversation.objects.select_for_update(of=("self",))
                            .select_related("line__campaign", "line__provider")
                            .filter(pk=candidate.pk, status=Conversation.Status.MENU).first())
            if conversation is None:
                continue
            _route_to_campaign(conversation, conversation.line.campaign, reason="menu_timeout")
            routed += 1
    return routed


def _distribute_safely(*, campaign_id: int | None = None, agent_id: int | None = None) -> None:
    """Automatic distribution after a commit; a failure there must not undo what committed."""
    from conversa.inbox import distribution

    try:
        if campaign_id is not None:
            distribution.distribute(campaign_id)
        if agent_id is not None:
            distribution.distribute_for_agent(User.objects.get(pk=agent_id))
    except Exception:
        logger.exception("automatic distribution failed (campaign %s, agent %s)", campaign_id, agent_id)


# --------------------------------------------------------------------------- statuses
def apply_status(line: Line, update: StatusUpdate) -> Message | None:
    """Move a message's status forward only; keep statuses for messages we do not know yet."""
    title = _failure_title(reason=update.error_reason, title=update.error_title)
    ids = [i for i in [update.provider_message_id, *update.alternate_ids] if i]
    message = Message.objects.filter(line=line, provider_message_id__in=ids).first() if ids else None
    if message is None:
        if update.provider_message_id and (update.status in STATUS_RANK or update.status == Message.Status.FAILED):
            # Kept under the primary id only: it is the id our send result will carry.
            PendingStatus.objects.create(line=line, provider_message_id=update.provider_message_id,
                                         status=update.status, error_code=update.error_code,
                                         error_title=title, occurred_at=update.timestamp)
        return None
    with transaction.atomic():
        changed = _advance_status(message, update.status, update.error_code, title)
    return message if changed else None


def _advance_status(message: Message, status: str, error_code: str = "", error_title: str = "") -> bool:
    """Conditional update: only from an earlier status, so a late 'sent' never undoes 'read'."""
    now = timezone.now()
    qs = Message.objects.filter(pk=message.pk)
    if status == Message.Status.FAILED:
        title = error_title or "Failed"
        changed = qs.filter(status__in=FAILABLE).update(
            status=status, error_code=error_code, error_title=title, status_changed_at=now
        )
    elif status in STATUS_RANK:
        earlier = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[Message.Status(status)]]
        changed = qs.filter(status__in=earlier).update(status=status, status_changed_at=now)
    else:
        return False
    if changed:
        message.refresh_from_db()
        publish_message("message.status", message)
    return bool(changed)


def record_send_success(message: Message, provider_message_id: str) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(provider_message_id=provider_message_id,
                                                     send_claimed_at=None)
        message.provider_message_id = provider_message_id
        _advance_status(message, Message.Status.SENT)
        pending = list(PendingStatus.objects.filter(line_id=message.line_id,
                                                    provider_message_id=provider_message_id))
        for status in sorted(pending, key=lambda p: STATUS_RANK.get(p.status, 9)):  # type: ignore[call-overload]
            _advance_status(message, status.status, status.error_code, status.error_title)
        PendingStatus.objects.filter(pk__in=[p.pk for p in pending]).delete()


def record_send_failure(message: Message, *, code: str, title: str, reason: str = "") -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(send_claimed_at=None)
        _advance_status(message, Message.Status.FAILED, code, _failure_title(reason=reason, title=title))


# --------------------------------------------------------------------------- capture
def capture(conversation_id: int, agent: UserModel) -> Conversation:
    """Take a conversation from the general inbox. Atomic: one conditional UPDATE decides the race."""
    require_whatsapp_access(agent)
    conversation = Conversation.objects.filter(pk=conversation_id, campaign__in=campaigns_for(agent)).first()
    if conversation is None:
        raise NotFound(_("Conversation not found."))
    now = timezone.now()
    with transaction.atomic():
        won = Conversation.objects.filter(
            pk=conversation_id, status=Conversation.Status.NEW, agent__isnull=True
        ).update(agent=agent, status=Conversation.Status.ATTENDED, attended_at=now)
        conversation.refresh_from_db()
        if not won:
            if conversation.agent_id == agent.pk and conversation.status == Conversation.Status.ATTENDED:
                return conversation  # a double click: already hers
            if conversation.status == Conversation.Status.CLOSED:
                raise Conflict(_("This conversation is already closed."))
            if conversation.status == Conversation.Status.MENU:
                raise Conflict(_("The customer is still choosing an option of the menu."))
            holder_user = conversation.agent
            named = holder_user is not None and may_know(agent, holder_user)
            holder = display_name(holder_user) if holder_user is not None and named else _("another agent")
            raise Conflict(_("Already taken by %(agent)s.") % {"agent": holder},
                           extra={"agent": conversation.agent_id if named else None, "agent_name": holder})
        _audit(AuditEntry.Kind.CAPTURED, actor=agent, conversation=conversation)
        publish_conversation("conversation.captured", conversation,
                             groups.campaign_group(conversation.campaign_id))
    return conversation


def _owned(conversation_id: int, user: UserModel, *, allow_supervisor: bool = False) -> Conversation:
    """Lock and return a conversation the user works on (404 if she may not even see it)."""
    require_whatsapp_access(user)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("line__provider", "campaign", "contact")
        .filter(pk=conversation_id, campaign__in=campaigns_for(user))
        .first()
    )
    if conversation is None:
        raise NotFound(_("Conversation not found."))
    if conversation.agent_id != user.pk and not (allow_supervisor and is_supervisor(user)):
        if conversation.agent_id is None:
            raise NotAllowed(_("Capture this conversation before acting on it."))
        raise NotFound(_("Conversation not found."))
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict(_("This conversation is closed."))
    return conversation


# --------------------------------------------------------------------------- replies
PLACEHOLDER = re.compile(r"\{(contact|agent|campaign|customer)\.(\w+)\}")


def render_quick_reply(body: str, conversation: Conversation, agent: UserModel) -> str:
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


# WhatsApp's limits (Meta Cloud API, docs/decisions.md): a text message's body, a media caption, and
# a template body parameter (Meta allows 32,768 only when the template has nothing but a body; 1,024
# holds for every template). Parameters may not hold new lines, tabs or over four spaces in a row
# (Meta error 132018).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_TEMPLATE_PARAM = 1024
PARAM_FORBIDDEN = re.compile(r"[\n\t]| {5,}")


def _validate_params(template: MessageTemplate, params: Any) -> list[str]:
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


def _approved_template(line: Line, template_id: Any) -> MessageTemplate:
    try:
        template_pk = int(template_id)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(_("template must be an id."), field="template") from exc
    template = MessageTemplate.objects.filter(pk=template_pk, line=line).first()
    if template is None:
        raise NotFound(_("Template %(template)s does not exist on line %(line)s.")
                       % {"template": template_pk, "line": line.number})
    if template.status != MessageTemplate.Status.APPROVED:
        raise InvalidInput(_("Template '%(template)s' is %(status)s, not approved.")
                           % {"template": template.name, "status": template.status}, field="template")
    return template


def _queue_outbound(conversation: Conversation, *, sender: UserModel | None, kind: str, body: str,
                    template: MessageTemplate | None = None, payload: dict[str, Any] | None = None,
                    media: CheckedUpload | None = None, client_message_id: str | None = None,
                    reply_to: Message | None = None) -> Message:
    """Persist the message as queued, then (on commit) hand it to the send task."""
    now = timezone.now()
    message = Message(
        conversation=conversation, line_id=conversation.line_id, direction=Message.Direction.OUTBOUND,
        kind=kind, body=body, template=template, payload=payload or {}, sender=sender,
        client_message_id=client_message_id, status=Message.Status.QUEUED, reply_to=reply_to,
        next_attempt_at=now,
    )
    if media is not None:
        # Stored under a random name with the sniffed type's extension; the agent's file name is
        # only the display name.
        message.media_mime = media.sniffed.mime
        message.media_filename = (stored_media.clean_display_name(media.upload.name or "")
                                  or f"file.{media.sniffed.extension}")
        message.media.save(stored_media.new_storage_name(media.sniffed), media.upload, save=False)
    message.save()
    conversation.last_message_at = now
    conversation.last_message_preview = _preview(body or f"[{kind}]")
    conversation.save(update_fields=["last_message_at", "last_message_preview"])
    publish_message("message.created", message)
    from conversa.inbox import tasks

    transaction.on_commit(lambda: tasks.send_outbound_message.enqueue(message.pk))
    return message


@dataclass
class ReplyRequest:
    text: str | None = None
    quick_reply: int | None = None
    template: int | None = None
    params: list[Any] | None = None
    media: UploadedFile | None = None
    client_message_id: str | None = None
    reply_to: int | None = None


@dataclass(frozen=True)
class CheckedUpload:
    upload: UploadedFile
    kind: str  # the WhatsApp media kind
    sniffed: stored_media.Sniffed  # what the bytes are (never the browser's claim or the name)


def check_upload(upload: UploadedFile) -> CheckedUpload:
    """Which WhatsApp media kind an upload is, from its sniffed content, enforcing size and type
    limits. Text files (no magic bytes) count as text only when declared so and really UTF-8 text."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    head = upload.read(stored_media.SNIFF_BYTES)
    upload.seek(0)
    sniffed = stored_media.sniff(head=head, chunks=upload.chunks(), declared_mime=declared)
    upload.seek(0)
    for kind, (limit, types) in settings.CONVERSA_MEDIA_LIMITS.items():
        if sniffed.mime in types:
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


def send_reply(conversation_id: int, agent: UserModel, request: ReplyRequest) -> tuple[Message, bool]:
    """The agent writes in her conversation. Returns (message, created); a repeated
    client_message_id returns the first message instead of sending twice."""
    # With a file, text is its caption.
    text = None if request.media is not None else request.text
    chosen = [x for x in (text, request.quick_reply, request.template, request.media) if x not in (None, "")]
    if len(chosen) != 1:
        raise InvalidInput(_("Send exactly one of: text, quick_reply, template, file."), field="text")
    with transaction.atomic():
        conversation = _owned(conversation_id, agent)
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
            template = _approved_template(conversation.line, request.template)
            params = _validate_params(template, request.params)
            message = _queue_outbound(
                conversation, sender=agent, kind=Message.Kind.TEMPLATE, body=template.render(params),
                template=template, payload={"params": params}, client_message_id=request.client_message_id,
            )
        else:
            if not is_window_open(conversation):
                raise WindowClosed(
                    _("More than 24 hours have passed since the customer's last message: "
                      "only an approved template can be sent now."), field="template")
            if request.quick_reply is not None:
                quick_reply = QuickReply.objects.filter(
                    pk=request.quick_reply, campaigns=conversation.campaign, active=True).first()
                if quick_reply is None:
                    raise NotFound(_("Quick reply not found for this campaign."))
                body = render_quick_reply(quick_reply.body, conversation, agent)
                if len(body) > MAX_TEXT:
                    raise InvalidInput(_("This quick reply, filled in, is longer than WhatsApp's %(limit)d "
                                         "characters.") % {"limit": MAX_TEXT}, field="quick_reply")
                message = _queue_outbound(conversation, sender=agent, kind=Message.Kind.TEXT, body=body,
                                          payload={"quick_reply": quick_reply.pk},
                                          client_message_id=request.client_message_id, reply_to=reply_to)
            elif request.media is not None:
                if len(request.text or "") > MAX_CAPTION:
                    raise InvalidInput(_("WhatsApp captions can be at most %(limit)d characters.")
                                       % {"limit": MAX_CAPTION}, field="text")
                checked = check_upload(request.media)
                message = _queue_outbound(conversation, sender=agent, kind=checked.kind, body=request.text or "",
                                          media=checked, client_message_id=request.client_message_id,
                                          reply_to=reply_to)
            else:
                text = str(request.text).strip()
                if not text:
                    raise InvalidInput(_("text cannot be empty."), field="text")
                if len(text) > MAX_TEXT:
                    raise InvalidInput(_("WhatsApp texts can be at most 4096 characters."), field="text")
                message = _queue_outbound(conversation, sender=agent, kind=Message.Kind.TEXT, body=text,
                                          client_message_id=request.client_message_id, reply_to=reply_to)
        _audit(AuditEntry.Kind.MESSAGE_SENT, actor=agent, conversation=conversation,
               message=message.pk, message_kind=message.kind)
    return message, True


def mark_read(conversation: Conversation, user: UserModel) -> None:
    """The assigned agent opened the thread: nothing unread any more."""
    if conversation.agent_id == user.pk and conversation.unread_count:
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
        conversation.unread_count = 0


# --------------------------------------------------------------------------- contacts
def identify(conversation_id: int, agent: UserModel, *, contact_id: Any = None,
             data: dict[str, Any] | None = None) -> Conversation:
    """Link the conversation to a contact of the campaign's database (existing or new)."""
    with transaction.atomic():
        conversation = _owned(conversation_id, agent, allow_supervisor=True)
        database_id = conversation.campaign.contact_database_id
        if contact_id is not None:
            try:
                contact = Contact.objects.get(pk=int(contact_id), database_id=database_id)
            except (Contact.DoesNotExist, TypeError, ValueError) as exc:
                raise NotFound(_("Contact not found in this campaign's contact database.")) from exc
            busy = (Conversation.objects.filter(line=conversation.line, contact=contact)
                    .exclude(status=Conversation.Status.CLOSED).exclude(pk=conversation.pk).first())
            if busy:
                raise Conflict(_("This contact already has an open conversation (#%(conversation)s) on this line.")
                               % {"conversation": busy.pk})
            created = False
        else:
            try:
                contact = create_contact(database=conversation.campaign.contact_database,
                                         phone=conversation.customer_phone, data=data or {})
            except ContactError as exc:
                field, message = next(iter(exc.errors.items()))
                raise InvalidInput(message, field=field, extra={"errors": exc.errors}) from exc
            except ContactExists as exc:
                raise Conflict(str(exc), extra={"contact": exc.contact.pk}) from exc
            created = True
        conversation.contact = contact
        conversation.save(update_fields=["contact"])
        # Every later conversation from this phone on the campaign shows the name too.
        (Conversation.objects.filter(campaign=conversation.campaign, customer_phone=contact.phone,
                                     contact__isnull=True).exclude(status=Conversation.Status.CLOSED)
         .update(contact=contact))
        _audit(AuditEntry.Kind.IDENTIFIED, actor=agent, conversation=conversation, contact=contact,
               created=created)
        publish_conversation("contact.identified", conversation)
    return conversation


def edit_contact(contact_id: int, user: UserModel, data: dict[str, Any]) -> Contact:
    with transaction.atomic():
        contact = visible_contact(user, contact_id, lock=True)
        if not may_edit_contact(user, contact):
            # Visible (she may search the campaign's contacts) but not hers to change: 403.
            raise NotAllowed(_("Only the agent attending this contact or a supervisor of its campaign can edit it."))
        try:
            update_contact(contact=contact, data=data)
        except ContactError as exc:
            field, message = next(iter(exc.errors.items()))
            raise InvalidInput(message, field=field, extra={"errors": exc.errors}) from exc
        _audit(AuditEntry.Kind.CONTACT_EDITED, actor=user, contact=contact,
               fields=sorted(k for k in data if k != "custom") + sorted((data.get("custom") or {}).keys()))
        for conversation in contact.conversations.exclude(status=Conversation.Status.CLOSED):
            publish_conversation("contact.updated", conversation)
    return contact


def visible_contact(user: UserModel, contact_id: int, *, lock: bool = False) -> Contact:
    require_whatsapp_access(user)
    qs = Contact.objects.filter(pk=contact_id, database__campaigns__in=campaigns_for(user)).distinct()
    contact = qs.first()
    if contact is None:
        raise NotFound(_("Contact not found."))
    if lock:
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
    return contact


# --------------------------------------------------------------------------- transfer
def transfer(conversation_id: int, user: UserModel, target_user_id: Any) -> Conversation:
    with transaction.atomic():
        conversation = _owned(conversation_id, user, allow_supervisor=True)
        try:
            target = User.objects.get(pk=int(target_user_id), is_active=True)
        except (User.DoesNotExist, TypeError, ValueError) as exc:
            raise InvalidInput(_("agent must be the user id of an agent of this campaign."),
                               field="agent") from exc
        if target.pk == conversation.agent_id:
            raise InvalidInput(_("The conversation is already in that agent's personal inbox."), field="agent")
        if not conversation.campaign.agents.filter(pk=target.pk).exists():
            raise InvalidInput(_("%(agent)s is not an agent of campaign '%(campaign)s'.")
                               % {"agent": name_for(user, target), "campaign": conversation.campaign.name},
                               field="agent")
        if not has_whatsapp_skill(target):
            raise InvalidInput(_("%(agent)s does not have the WhatsApp skill.") % {"agent": name_for(user, target)},
                               field="agent")
        previous = conversation.agent_id
        conversation.agent = target
        conversation.status = Conversation.Status.ATTENDED
        conversation.attended_at = conversation.attended_at or timezone.now()
        conversation.save(update_fields=["agent", "status", "attended_at"])
        _audit(AuditEntry.Kind.TRANSFERRED, actor=user, conversation=conversation,
               from_agent=previous, to_agent=target.pk)
        # From an agent: she loses it. From the general inbox (a supervisor assigning it): it leaves
        # every campaign agent's New tab.
        leaving = groups.agent_group(previous) if previous else groups.campaign_group(conversation.campaign_id)
        publish_conversation("conversation.transferred", conversation, leaving,
                             from_agent=previous, to_agent=target.pk)
        if previous:
            transaction.on_commit(lambda: _distribute_safely(agent_id=previous))
    return conversation


# --------------------------------------------------------------------------- close
def _clean_form(option: DispositionOption, answers: Any) -> dict[str, Any]:
    if option.kind != DispositionOption.Kind.MANAGEMENT:
        return {}
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        raise InvalidInput(_("form must be an object of field answers."), field="form")
    cleaned: dict[str, Any] = {}
    for spec in option.form_fields or []:
        name = spec["name"]
        value = answers.get(name)
        if value in (None, ""):
            if spec.get("required"):
                raise InvalidInput(_("'%(field)s' is required for this disposition.")
                                   % {"field": spec.get("label", name)}, field=name)
            continue
        kind = spec.get("type", "text")
        try:
            if kind == "number":
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ValueError(_("not a number"))
                number = float(value)
                if not math.isfinite(number):  # "NaN", "1e999": JSON (and reports) cannot hold them
                    raise ValueError(_("not a finite number"))
                cleaned[name] = number
            elif kind == "date":
                cleaned[name] = datetime.date.fromisoformat(str(value)).isoformat()
            elif kind == "choice":
                if value not in spec.get("choices", []):
                    raise ValueError(_("not one of the choices"))
                cleaned[name] = value
            elif kind == "boolean":
                cleaned[name] = bool(value)
            else:
                cleaned[name] = str(value)[:2000]
        except ValueError as exc:
            raise InvalidInput(_("'%(field)s': invalid %(kind)s (%(error)s).")
                               % {"field": spec.get("label", name), "kind": kind, "error": exc},
                               field=name) from exc
    unknown = set(answers) - {s["name"] for s in option.form_fields or []}
    if unknown:
        raise InvalidInput(_("Unknown form field(s): %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                           field="form")
    return cleaned


def close(conversation_id: int, user: UserModel, *, option_id: Any, notes: str = "",
          sub_option: str = "", form: Any = None, follow_up_at: datetime.datetime | None = None) -> Disposition:
    with transaction.atomic():
        conversation = _owned(conversation_id, user, allow_supervisor=True)
        try:
            option = DispositionOption.objects.get(pk=int(option_id), campaign=conversation.campaign, active=True)
        except (DispositionOption.DoesNotExist, TypeError, ValueError) as exc:
            raise InvalidInput(_("disposition must be one of this campaign's disposition options."),
                               field="disposition") from exc
        if option.sub_options and sub_option and sub_option not in option.sub_options:
            raise InvalidInput(_("sub_option must be one of: %(choices)s.")
                               % {"choices": ", ".join(option.sub_options)}, field="sub_option")
        if option.kind == DispositionOption.Kind.SCHEDULE:
            if follow_up_at is None:
                raise InvalidInput(_("This disposition schedules a follow-up: follow_up_at is required."),
                                   field="follow_up_at")
            if follow_up_at <= timezone.now():
                raise InvalidInput(_("follow_up_at must be in the future."), field="follow_up_at")
        answers = _clean_form(option, form)
        now = timezone.now()
        disposition = Disposition.objects.create(
            contact=conversation.contact, campaign=conversation.campaign, option=option, sub_option=sub_option,
            agent=conversation.agent or user, notes=notes or "", form_answers=answers,
            follow_up_at=follow_up_at if option.kind == DispositionOption.Kind.SCHEDULE else None,
            conversation=conversation,
        )
        if conversation.line.goodbye_message and is_window_open(conversation):
            _queue_outbound(conversation, sender=None, kind=Message.Kind.TEXT, body=conversation.line.goodbye_message)
        closing_agent = conversation.agent_id
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = now
        conversation.unread_count = 0
        conversation.save(update_fields=["status", "closed_at", "unread_count"])
        _audit(AuditEntry.Kind.CLOSED, actor=user, conversation=conversation,
               disposition=disposition.pk, option=option.name)
        publish_conversation("conversation.closed", conversation,
                             *([groups.agent_group(closing_agent)] if closing_agent else []))
        if closing_agent:
            transaction.on_commit(lambda: _distribute_safely(agent_id=closing_agent))
    return disposition


# --------------------------------------------------------------------------- outbound
def start_outbound(agent: UserModel, *, line_id: Any, phone: Any, template_id: Any, params: Any,
                   contact_data: dict[str, Any] | None = None) -> Conversation:
    """Open a conversation with an approved template; it goes to the agent's personal inbox."""
    require_whatsapp_access(agent)
    try:
        line = Line.objects.select_related("campaign", "provider").get(
            pk=int(line_id), active=True, campaign__in=campaigns_for(agent))
    except (Line.DoesNotExist, TypeError, ValueError) as exc:
        raise NotFound(_("Line not found.")) from exc
    try:
        e164 = normalize_phone(str(phone or ""))
    except InvalidPhone as exc:
        raise InvalidInput(str(exc), field="phone") from exc
    template = _approved_template(line, template_id)
    cleaned_params = _validate_params(template, params)
    campaign: Campaign = line.campaign
    with transaction.atomic():
        busy = (Conversation.objects.select_for_update().filter(line=line, customer_phone=e164)
                .exclude(status=Conversation.Status.CLOSED).first())
        if busy:
            holder = name_for(agent, busy.agent) if busy.agent else _("the general inbox")
            raise Conflict(_("%(phone)s already has an open conversation (in %(holder)s).")
                           % {"phone": e164, "holder": holder},
                           extra={"conversation": busy.pk if busy.agent_id == agent.pk else None})
        contact = Contact.objects.filter(database_id=campaign.contact_database_id, phone=e164).first()
        if contact is None and contact_data:
            try:
                contact = create_contact(database=campaign.contact_database, phone=e164, data=contact_data)
            except ContactError as exc:
                field, message = next(iter(exc.errors.items()))
                raise InvalidInput(message, field=f"contact.{field}", extra={"errors": exc.errors}) from exc
            except ContactExists as exc:  # created by someone else a moment ago
                contact = exc.contact
        now = timezone.now()
        try:
            with transaction.atomic():
                conversation = Conversation.objects.create(
                    line=line, campaign=campaign, customer_phone=e164, contact=contact, agent=agent,
                    status=Conversation.Status.ATTENDED, is_outbound=True, attended_at=now,
                    customer_profile_name=contact.full_name if contact else "",
                )
        except IntegrityError as exc:
            raise Conflict(_("%(phone)s already has an open conversation.") % {"phone": e164}) from exc
        _audit(AuditEntry.Kind.OUTBOUND_STARTED, actor=agent, conversation=conversation,
               template=template.name)
        publish_conversation("conversation.created", conversation)
        _queue_outbound(conversation, sender=agent, kind=Message.Kind.TEMPLATE, body=template.render(cleaned_params),
                        template=template, payload={"params": cleaned_params})
    return conversation


# --------------------------------------------------------------------------- housekeeping
def close_stale_conversations(*, older_than: datetime.timedelta, statuses: list[str],
                              actor: UserModel | None = None, only_ids: list[int] | None = None,
                              batch_size: int = 200) -> int:
    """Close (by the system) open conversations with no message for `older_than`.

    For the backlog a contact center accumulates: abandoned chats in the general inbox, or ones an
    agent left open. Each conversation closes with its own conditional update, so one that gets a
    new message meanwhile is left alone; work goes in small transactions."""
    allowed = {Conversation.Status.NEW, Conversation.Status.ATTENDED}
    if not statuses or not set(statuses) <= allowed:
        raise InvalidInput(_("statuses must be among: %(allowed)s.") % {"allowed": ", ".join(sorted(allowed))},
                           field="statuses")
    cutoff = timezone.now() - older_than
    stale = Q(last_message_at__lt=cutoff) | Q(last_message_at__isnull=True, created_at__lt=cutoff)
    candidates = Conversation.objects.filter(stale, status__in=statuses)
    if only_ids is not None:
        candidates = candidates.filter(pk__in=only_ids)
    ids = list(candidates.order_by("pk").values_list("pk", flat=True))
    closed = 0
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            for conversation_id in ids[start:start + batch_size]:
                now = timezone.now()
                done = Conversation.objects.filter(stale, pk=conversation_id, status__in=statuses).update(
                    status=Conversation.Status.CLOSED, closed_at=now, closed_by_system=True, unread_count=0)
                if not done:
                    continue
                conversation = Conversation.objects.select_related("contact", "line__provider").get(pk=conversation_id)
                previous_agent = conversation.agent_id
                _audit(AuditEntry.Kind.CLOSED, actor=actor, conversation=conversation, reason="stale",
                       older_than_hours=round(older_than.total_seconds() / 3600, 1))
                publish_conversation("conversation.closed", conversation,
                                     *([groups.agent_group(previous_agent)] if previous_agent else []))
                closed += 1
    return closed
