"""The one interface between Conversa and a WhatsApp provider.

Adapters translate: webhook bytes → our inbound messages / status updates, and our outbound
messages → the vendor's HTTP API. Nothing outside `adapters/` knows a vendor's field names.
"""

from __future__ import annotations

import abc
import datetime
import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

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


# The HTTP client provider calls go through in this context: a shared one during a bulk send (its
# connections and TLS setup reused: a fresh client per call measured ~50 ms of CPU against ~3 ms),
# else none (a fresh client per call, as single sends always did).
_pooled_client: ContextVar[httpx.Client | None] = ContextVar("conversa_provider_http_client", default=None)


@contextmanager
def pooled_http(client: httpx.Client) -> Iterator[None]:
    """Provider calls made inside go through `client`."""
    token = _pooled_client.set(client)
    try:
        yield
    finally:
        _pooled_client.reset(token)


def provider_request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """httpx.request, through the pooled client when one is in place (`pooled_http`)."""
    client = _pooled_client.get()
    return client.request(method, url, **kwargs) if client is not None else httpx.request(method, url, **kwargs)


class SendError(Exception):
    """A call that did not succeed. `retryable`: the request provably never reached the provider or
    was refused unprocessed (no connection, 429, a documented "not processed" 5xx): safe to repeat.
    `ambiguous`: it may have been processed (a timeout or dropped answer after the request was
    written, an unexplained 5xx, an acceptance without an id): repeating it could send the customer
    the same message twice, so it never is repeated by itself. Anything else is a refusal."""

    def __init__(self, title: str, *, code: str = "", retryable: bool = False, line_unusable: bool = False,
                 reason: str = "", ambiguous: bool = False, retry_after: float | None = None):
        super().__init__(f"{code} {title}".strip())
        # Seconds the provider asked us to wait (HTTP Retry-After on a 429/503), when it said.
        self.retry_after = retry_after
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

    @classmethod
    def from_stored(cls, stored: dict[str, object]) -> TemplateButtonValue:
        """One of the buttons stored with a template send ({"index", "sub_type", "value"})."""
        return cls(index=int(str(stored["index"])), sub_type=str(stored["sub_type"]), value=str(stored["value"]))


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
        from conversa.whatsapp.adapters.checks import checked  # the rules use these dataclasses

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
