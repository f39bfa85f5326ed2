"""The one interface between Conversa and a WhatsApp provider.

Adapters translate: webhook bytes → our inbound messages / status updates, and our outbound
messages → the vendor's HTTP API. Nothing outside `adapters/` knows a vendor's field names.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conversa.core import netfetch, safejson

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    from conversa.whatsapp.models import Line

# Vendor-neutral error reason: the customer's 24-hour window is closed, only a template may be sent.
# Adapters set it (StatusUpdate.error_reason, SendError.reason) for their vendor's code; the raw
# code stays in error_code.
WINDOW_CLOSED = "window_closed"


def hmac_sha256_signature(*, secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`: the signature header format Meta uses and the sandbox
    copies. Compare with `hmac.compare_digest`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(*, secret: str, body: bytes, given: str) -> bool:
    return hmac.compare_digest(given.encode(), hmac_sha256_signature(secret=secret, body=body).encode())


@dataclass(frozen=True)
class ConfigField:
    """One credential or setting an adapter reads from `Provider.config` or `Line.config`; the
    admin renders and validates these (secrets as password inputs)."""

    key: str
    label: str | _StrPromise  # lazily translated
    help_text: str | _StrPromise = ""
    secret: bool = False
    required: bool = False


@dataclass
class InboundMessage:
    provider_message_id: str
    from_phone: str  # as the provider sends it; normalised by the inbox
    kind: str  # one of inbox.Message.Kind values
    body: str = ""
    profile_name: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    media_id: str = ""  # provider media id (Meta) or direct URL (GupShup) to fetch later
    media_mime: str = ""
    media_filename: str = ""
    reply_to_provider_id: str = ""
    timestamp: datetime.datetime | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # The provider's id of the line the message was sent to, when the payload names one (Meta sends
    # every number of an app to one callback URL): the value of the adapter's `line_ref_field` in
    # some Line.config. The caller resolves it; "" means the webhook's own line.
    line_ref: str = ""
    # The id of the list row or button the customer chose (what we sent as ListRow.id), for
    # interactive and button replies; "" otherwise.
    reply_id: str = ""
    # The provider's stable id of the customer, sent beside the phone or instead of it (Meta's
    # business-scoped user id for customers who hide their number behind a username), and the
    # customer's username when they have one.
    from_user_id: str = ""
    username: str = ""
    # The id was derived from the content (the provider sent none): see `checked`.
    derived_id: bool = False


@dataclass
class EchoMessage(InboundMessage):
    """A message the business sent from the WhatsApp Business app (or a linked device) on the same
    number: outbound; `from_phone` / `from_user_id` name the customer it went to."""


@dataclass
class MessageChange:
    """An earlier message edited or deleted (by the customer, or by the business from the WhatsApp
    app when `echo`): the change's own id, the id of the message it changes, and the new text."""

    provider_message_id: str
    original_id: str
    action: str  # "edit" / "delete"
    from_phone: str = ""  # the customer, as InboundMessage.from_phone
    from_user_id: str = ""
    body: str = ""  # an edit's new text or caption
    timestamp: datetime.datetime | None = None
    line_ref: str = ""
    echo: bool = False


@dataclass
class CustomerEvent:
    """Something that happened to the customer's WhatsApp account (Meta `system` messages): a new
    number, a new user id, a new security identity. `body` is the provider's sentence for it."""

    provider_message_id: str
    event: str  # "number_changed" / "user_id_changed" / "identity_changed" / "other"
    body: str = ""
    from_phone: str = ""
    from_user_id: str = ""
    new_phone: str = ""
    new_user_id: str = ""
    timestamp: datetime.datetime | None = None
    line_ref: str = ""


@dataclass
class TemplateCategoryChange:
    """The provider changed (or is about to change) a template's category."""

    provider_template_id: str
    name: str
    language: str
    category: str
    previous_category: str = ""


@dataclass
class IdAlias:
    """Another id the provider will use later for one of our sent messages (GupShup's `enqueued`
    names WhatsApp's id, which receipts a week later carry alone)."""

    provider_message_id: str
    alias: str
    line_ref: str = ""


@dataclass
class LineNotice:
    """Something about the line an admin must act on (the number moved elsewhere, a callback
    format we cannot use)."""

    problem: str


@dataclass
class StatusUpdate:
    provider_message_id: str
    status: str  # sent / delivered / read / failed
    timestamp: datetime.datetime | None = None
    error_code: str = ""
    error_title: str = ""
    # Other ids the provider may use for the same message (GupShup: gsId vs WhatsApp id).
    alternate_ids: list[str] = field(default_factory=list)
    line_ref: str = ""  # as InboundMessage.line_ref
    # A vendor-neutral reason the adapter recognised in the failure (WINDOW_CLOSED), or "".
    error_reason: str = ""
    # The `reference` our send carried, echoed back by providers that can (Meta's
    # biz_opaque_callback_data, the sandbox's "reference"); "" otherwise.
    reference: str = ""
    # The customer the message went to, as the provider writes it ("" when not given): providers
    # without a reference are reconciled on recipient and time.
    recipient: str = ""


@dataclass
class TemplateInfo:
    provider_template_id: str
    name: str
    language: str
    status: str  # approved / pending / rejected / paused / disabled
    body: str = ""
    category: str = ""
    header: str = ""
    footer: str = ""
    buttons: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""


@dataclass
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    templates: list[TemplateInfo] = field(default_factory=list)
    # What the provider reports (error callbacks) and items we could not use, for the event's log.
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Items dropped by `checked()` for missing or unusable fields: {"field", "error"}.
    rejected: list[dict[str, str]] = field(default_factory=list)
    # Messages the business sent from the WhatsApp Business app on the same number (outbound;
    # `from_phone` / `from_user_id` name the customer they went to).
    echoes: list[EchoMessage] = field(default_factory=list)
    changes: list[MessageChange] = field(default_factory=list)
    customer_events: list[CustomerEvent] = field(default_factory=list)
    template_categories: list[TemplateCategoryChange] = field(default_factory=list)
    id_aliases: list[IdAlias] = field(default_factory=list)
    line_notices: list[LineNotice] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.messages or self.statuses or self.templates or self.echoes or self.changes
                    or self.customer_events or self.template_categories or self.id_aliases
                    or self.line_notices)


class MalformedPayload(ValueError):
    """The callback body cannot be read at all (not JSON, too deep, wrong shape): answer 400."""

    def __init__(self, message: str, *, field: str = "body"):
        super().__init__(message)
        self.field = field


def load_json(body: bytes | str) -> Any:
    """The one reader of provider JSON (callback bodies and JSON nested in them): bounded depth,
    finite numbers; MalformedPayload otherwise, never RecursionError."""
    try:
        return safejson.loads(body)
    except ValueError as exc:
        raise MalformedPayload(str(exc)) from None


# Longest values our columns hold (inbox.Message, whatsapp.PendingStatus, inbox.Conversation).
MAX_ID = 200
MAX_PHONE_DIGITS = 15  # E.164
MAX_NAME = 200
MAX_FILENAME = 255
MAX_MIME = 120
MAX_STATUS = 20
MAX_ERROR_CODE = 40
MAX_ERROR_TITLE = 2000


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters; a cut shows as an ellipsis (people read these)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_filename(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        return _cut(name, limit)
    return _cut(stem, limit - len(ext) - 1) + "." + ext


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text any database column can hold: NUL removed (PostgreSQL refuses it in text and jsonb,
    SQLite takes it, so it passes tests there and fails in production), lone surrogates (a JSON
    "\\ud83d" without its pair, which no UTF-8 encoder accepts) replaced with U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    # A JSON reader already joins valid pairs, so any surrogate left stands alone.
    return _SURROGATE.sub("\ufffd", text)


def clean_value(value: Any) -> Any:
    """`clean_text` on every string (keys too) of a JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value


def fitted_id(value: str) -> str:
    """An identifier our columns hold: as is up to MAX_ID characters, else `sha256:` and the hex
    digest of the whole value. Deterministic, so a replay, a status or a reply naming the same long
    id still finds the same message, and two different ids stay two (cutting would merge them)."""
    value = clean_text(value)
    if len(value) <= MAX_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def fitted_phone(value: str) -> str:
    """A sender our columns hold. Up to 15 digits (E.164): the digits as sent (formatting dropped
    when the text is long). More is no phone anyone can answer, but the message is still the
    customer's: its first 11 digits and 8 derived from a hash of all of them (19, the column's
    room), so every message of that sender lands in the same conversation."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= MAX_PHONE_DIGITS:
        return clean_text(value) if len(value) <= 40 else digits
    derived = int(hashlib.sha256(digits.encode()).hexdigest(), 16) % 10**8
    return f"{digits[:11]}{derived:08d}"


def checked(parsed: ParsedWebhook) -> ParsedWebhook:
    """Every item an adapter produced, made safe to store, so one odd value never costs the
    customer's message: text cleaned of what no column takes (`clean_text`), identifiers over their
    column hashed (`fitted_id`), senders over 15 digits replaced by a stand-in (`fitted_phone`),
    display values (names, file names) cut with an ellipsis; values no column can hold and nothing
    needs (a media type) are dropped. Only items missing what identifies them (an id, a sender with
    a digit, a status) are moved to `rejected`. Vendor-neutral, so every provider gets the same rules."""
    parsed.messages = [m for m in parsed.messages if _checked_message(m, parsed)]
    parsed.echoes = [m for m in parsed.echoes if _checked_message(m, parsed)]
    statuses: list[StatusUpdate] = []
    for update in parsed.statuses:
        update.status = clean_text(update.status)
        if not update.provider_message_id or not update.status or len(update.status) > MAX_STATUS:
            field_name = "status.status" if update.provider_message_id else "status.id"
            parsed.rejected.append({"field": field_name, "error": f"{field_name} is missing"
                                    if field_name == "status.id" else "status.status is missing or unknown"})
            continue
        update.provider_message_id = fitted_id(update.provider_message_id)
        update.alternate_ids = [fitted_id(i) for i in update.alternate_ids if i]
        update.line_ref = clean_text(update.line_ref)
        # Echoed values are the provider's (or anyone's, on an open sandbox): cleaned like the rest.
        update.reference = clean_text(update.reference)[:MAX_ID]
        update.recipient = clean_text(update.recipient)[:MAX_ID]
        update.error_code = clean_text(update.error_code)[:MAX_ERROR_CODE]
        update.error_title = _cut(clean_text(update.error_title), MAX_ERROR_TITLE)
        statuses.append(update)
    parsed.statuses = statuses
    parsed.changes = [c for c in parsed.changes if _checked_change(c, parsed)]
    parsed.customer_events = [e for e in parsed.customer_events if _checked_customer_event(e, parsed)]
    parsed.id_aliases = [dataclasses.replace(a, provider_message_id=fitted_id(a.provider_message_id),
                                             alias=fitted_id(a.alias), line_ref=clean_text(a.line_ref))
                         for a in parsed.id_aliases if a.provider_message_id and a.alias]
    parsed.template_categories = [dataclasses.replace(c, **{f.name: clean_text(str(getattr(c, f.name)))[:MAX_NAME]
                                                            for f in dataclasses.fields(c)})
                                  for c in parsed.template_categories]
    parsed.line_notices = [LineNotice(problem=_cut(clean_text(n.problem), MAX_ERROR_TITLE))
                           for n in parsed.line_notices]
    parsed.templates = [dataclasses.replace(t, **{f.name: clean_value(getattr(t, f.name))
                                                  for f in dataclasses.fields(t)}) for t in parsed.templates]
    parsed.errors.extend({"rejected": r["field"], "error": r["error"]} for r in parsed.rejected)
    return parsed


def _has_sender(*, phone: str, user_id: str) -> bool:
    return any(ch.isdigit() for ch in phone) or bool(user_id.strip())


def derived_message_id(inbound: InboundMessage) -> str:
    """A stable id for a message the provider sent without one: the same message redelivered gets
    the same id (stored once), two different id-less messages get two."""
    content = json.dumps([inbound.from_phone, inbound.from_user_id,
                          inbound.timestamp.isoformat() if inbound.timestamp else "", inbound.kind,
                          inbound.body, inbound.media_id, inbound.payload], sort_keys=True, default=str)
    return "derived:" + hashlib.sha256(content.encode()).hexdigest()


def _checked_message(inbound: InboundMessage, parsed: ParsedWebhook) -> bool:
    """One message (or echo) made safe to store, per `checked`; False when it must be dropped."""
    inbound.from_user_id = clean_text(inbound.from_user_id).strip()
    if len(inbound.from_user_id) > MAX_ID:
        inbound.from_user_id = fitted_id(inbound.from_user_id)
    if not _has_sender(phone=inbound.from_phone, user_id=inbound.from_user_id):
        parsed.rejected.append({"field": "from", "error": "from is missing or not a phone number"
                                if inbound.from_phone else "from is missing"})
        return False
    if not inbound.from_phone.strip() or not any(ch.isdigit() for ch in inbound.from_phone):
        inbound.from_phone = ""  # known by user id only
    else:
        inbound.from_phone = fitted_phone(inbound.from_phone)
    inbound.body = clean_text(inbound.body)
    inbound.payload = clean_value(inbound.payload)
    if not inbound.provider_message_id:
        # Never lose the customer's message, never merge two: an id from what it says and when.
        inbound.provider_message_id = derived_message_id(inbound)
        inbound.derived_id = True
        parsed.errors.append({"message": inbound.provider_message_id,
                              "error": "message without an id: stored under an id derived from its content"})
    inbound.provider_message_id = fitted_id(inbound.provider_message_id)
    inbound.kind, inbound.line_ref, inbound.reply_id = (
        clean_text(inbound.kind), clean_text(inbound.line_ref), clean_text(inbound.reply_id))
    inbound.profile_name = _cut(clean_text(inbound.profile_name), MAX_NAME)
    inbound.username = _cut(clean_text(inbound.username), MAX_NAME)
    inbound.media_filename = _cut_filename(clean_text(inbound.media_filename), MAX_FILENAME)
    inbound.media_mime = clean_text(inbound.media_mime)
    if len(inbound.media_mime) > MAX_MIME:
        inbound.media_mime = ""  # the stored file's type is sniffed anyway
    if inbound.reply_to_provider_id:
        inbound.reply_to_provider_id = fitted_id(inbound.reply_to_provider_id)
    inbound.media_id = clean_text(inbound.media_id)
    if len(inbound.media_id) > MAX_ID:
        parsed.errors.append({"message": inbound.provider_message_id,
                              "error": f"media reference longer than {MAX_ID} characters: not fetched"})
        inbound.media_id = ""
    return True


def _checked_change(change: MessageChange, parsed: ParsedWebhook) -> bool:
    if not change.original_id:
        parsed.rejected.append({"field": f"{change.action}.original_message_id",
                                "error": "the changed message's id is missing"})
        return False
    change.original_id = fitted_id(change.original_id)
    change.provider_message_id = fitted_id(change.provider_message_id or f"{change.action}:{change.original_id}")
    change.from_user_id = clean_text(change.from_user_id)[:MAX_ID]
    change.from_phone = fitted_phone(change.from_phone) if any(ch.isdigit() for ch in change.from_phone) else ""
    change.body, change.line_ref, change.action = (clean_text(change.body), clean_text(change.line_ref),
                                                   clean_text(change.action))
    return True


def _checked_customer_event(event: CustomerEvent, parsed: ParsedWebhook) -> bool:
    if not _has_sender(phone=event.from_phone, user_id=event.from_user_id):
        parsed.rejected.append({"field": "system.from", "error": "the customer of a system message is missing"})
        return False
    event.from_phone = fitted_phone(event.from_phone) if any(ch.isdigit() for ch in event.from_phone) else ""
    event.new_phone = fitted_phone(event.new_phone) if any(ch.isdigit() for ch in event.new_phone) else ""
    event.from_user_id = clean_text(event.from_user_id)[:MAX_ID]
    event.new_user_id = clean_text(event.new_user_id)[:MAX_ID]
    event.body, event.event = clean_text(event.body), clean_text(event.event)
    event.line_ref = clean_text(event.line_ref)
    if not event.provider_message_id:
        content = json.dumps([event.from_phone, event.from_user_id, event.event, event.body,
                              event.timestamp.isoformat() if event.timestamp else ""])
        event.provider_message_id = "derived:" + hashlib.sha256(content.encode()).hexdigest()
    event.provider_message_id = fitted_id(event.provider_message_id)
    return True


def json_objects(body: bytes, parsed: ParsedWebhook) -> list[dict[str, Any]]:
    """A callback body as a list of JSON objects (one object or a batch); anything else in a batch
    is recorded in `parsed.errors` instead of breaking the rest."""
    data = load_json(body)
    if not isinstance(data, dict | list):
        raise MalformedPayload("The body must be a JSON object or a list of them.")
    objects: list[dict[str, Any]] = []
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            objects.append(item)
        else:
            parsed.errors.append({"error": "callback item is not an object"})
    if not objects:
        # `[]`, `[null]`: nothing to store, and stored it would be work that does nothing forever.
        raise MalformedPayload("The body carries no callback object.")
    return objects


@dataclass
class SendResult:
    provider_message_id: str
    raw: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """A call that did not succeed. `retryable`: the request provably never reached the provider or
    was refused unprocessed (no connection, 429, a documented "not processed" 5xx): safe to repeat.
    `ambiguous`: it may have been processed (a timeout or dropped answer after the request was
    written, an unexplained 5xx, an acceptance without an id): repeating it could send the customer
    the same message twice, so it never is repeated by itself. Anything else is a refusal."""

    def __init__(self, title: str, *, code: str = "", retryable: bool = False, line_unusable: bool = False,
                 reason: str = "", ambiguous: bool = False):
        super().__init__(f"{code} {title}".strip())
        self.code = str(code)
        self.title = title
        self.retryable = retryable and not ambiguous
        self.ambiguous = ambiguous
        self.reason = reason  # as StatusUpdate.error_reason
        # The line's credentials are rejected: every send will fail until an admin fixes them.
        self.line_unusable = line_unusable


def fetch_media_url(url: str, *, max_bytes: int, headers: dict[str, str] | None = None) -> netfetch.Fetched:
    """GET a media URL named by a payload through the SSRF guard; refusals become permanent
    SendErrors, network trouble and 5xx/429 retryable ones."""
    try:
        fetched = netfetch.fetch(url, max_bytes=max_bytes, headers=headers)
    except netfetch.FetchRefused as exc:
        raise SendError(f"Media not downloaded: {exc}", code="refused") from exc
    except netfetch.FetchFailed as exc:
        raise SendError(f"Media download failed: {exc}", code="network", retryable=True) from exc
    if not fetched.is_success:
        raise SendError(f"Media download answered HTTP {fetched.status_code}", code=str(fetched.status_code),
                        retryable=fetched.status_code == 429 or fetched.status_code >= 500)
    return fetched


class WebhookRejected(Exception):
    """The request is not from the provider (bad signature or token): answer 401."""


@dataclass
class OutboundMedia:
    kind: str  # image / document / audio / video
    url: str  # absolute URL the provider fetches
    mime: str = ""
    filename: str = ""
    caption: str = ""


@dataclass
class TemplateButtonValue:
    """The variable part of a template button: the end of a dynamic URL button, or the payload a
    quick-reply button sends back when tapped. `index` is the button's position in the template."""

    index: int
    sub_type: str  # "url" / "quick_reply"
    value: str


@dataclass
class TemplateExtras:
    """What a template may need beyond its positional body parameters."""

    # The body's named parameters ({{first_name}}), in the order `params` gives their values.
    param_names: list[str] = field(default_factory=list)
    header: OutboundMedia | None = None  # an image / video / document header, by link
    buttons: list[TemplateButtonValue] = field(default_factory=list)


@dataclass
class ListRow:
    id: str
    title: str  # at most 24 characters (WhatsApp's limit)
    description: str = ""  # at most 72


@dataclass
class OutboundList:
    """An interactive list (the line's menu): a button opening up to 10 rows."""

    body: str
    button: str
    rows: list[ListRow]
    header: str = ""
    footer: str = ""

    def as_text(self) -> str:
        """The same menu as numbered text: what providers without lists show, and what the customer
        can answer by typing the number."""
        lines = [self.header] if self.header else []
        lines.append(self.body)
        lines += [f"{n}. {row.title}" + (f" — {row.description}" if row.description else "")
                  for n, row in enumerate(self.rows, start=1)]
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)


class ProviderAdapter(abc.ABC):
    kind: str = ""
    title: str = ""  # the vendor's product name, for the admin
    # What the admin asks for: credentials of the account (Provider.config) and of each number
    # (Line.config).
    provider_fields: tuple[ConfigField, ...] = ()
    line_fields: tuple[ConfigField, ...] = ()
    # The Line.config key whose value `InboundMessage.line_ref` / `StatusUpdate.line_ref` carry.
    line_ref_field: str = ""
    # Appended to the callback URL shown in the admin (e.g. how the webhook secret travels).
    callback_url_suffix: str = ""
    # The demo's customer simulator shows this provider's lines: message events also go to the line.
    has_simulator: bool = False

    def __init__(self, line: Line):
        self.line = line
        self.provider = line.provider
        self.config: dict[str, Any] = {**(line.provider.config or {}), **(line.config or {})}

    # --- inbound -------------------------------------------------------------------------
    @abc.abstractmethod
    def verify(self, *, headers: dict[str, str], body: bytes, query: dict[str, str]) -> None:
        """Raise WebhookRejected unless the request provably comes from the provider."""

    @abc.abstractmethod
    def parse(self, body: bytes) -> ParsedWebhook:
        """Every message, status and template update the payload carries, in payload order.
        Reads JSON with `load_json`/`json_objects`; raises MalformedPayload for unreadable bodies."""

    def read(self, body: bytes) -> ParsedWebhook:
        """What callers use: `parse` plus the shared safety rules of `checked` (MalformedPayload
        for a body that cannot be read at all)."""
        try:
            return checked(self.parse(body))
        except MalformedPayload:
            raise
        except (RecursionError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # An adapter tripping over a shape it did not expect: the body is the problem.
            raise MalformedPayload(f"unreadable callback: {type(exc).__name__}: {exc}"[:300]) from exc

    def handshake(self, query: dict[str, str]) -> str | None:
        """GET verification (Meta): the challenge to echo, or None to refuse."""
        return None

    def download_media(self, media_ref: str, *, max_bytes: int) -> tuple[bytes, str]:
        """The bytes and declared type of an inbound media file. Any URL taken from a payload is
        fetched through conversa.core.netfetch (no internal addresses, capped at max_bytes)."""
        raise SendError("This provider does not serve media.", retryable=False)

    # --- outbound ------------------------------------------------------------------------
    # Every send takes `reference`: our id for the message, carried where the provider echoes it
    # back in its status callbacks (StatusUpdate.reference), so an unconfirmed send is reconciled.
    @abc.abstractmethod
    def send_text(self, *, to: str, text: str, reply_to: str = "", reference: str = "") -> SendResult:
        """Send; return the provider's message id or raise SendError."""

    @abc.abstractmethod
    def send_media(self, *, to: str, media: OutboundMedia, reply_to: str = "", reference: str = "") -> SendResult:
        """Send; return the provider's message id or raise SendError."""

    @abc.abstractmethod
    def send_template(self, *, to: str, template_name: str, template_id: str, language: str,
                      params: list[str], reference: str = "", extras: TemplateExtras | None = None) -> SendResult:
        """Send an approved template with its body parameters, in order (named by
        `extras.param_names` when the template uses names), and its media header and button values."""

    def mark_read(self, *, provider_message_id: str) -> None:
        """Tell the provider the customer's message was read (blue ticks); by default nothing."""
        return None

    def send_list(self, *, to: str, menu: OutboundList, reference: str = "") -> SendResult:
        """An interactive list; by default its numbered-text form (answered by typing the number)."""
        return self.send_text(to=to, text=menu.as_text(), reference=reference)

    def fetch_templates(self) -> list[TemplateInfo]:
        return []

    def check_connection(self) -> str:
        """A short human-readable result; raises SendError when the provider cannot be reached."""
        return "ok"
