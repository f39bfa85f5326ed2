"""The one interface between Conversa and a WhatsApp provider.

Adapters translate: webhook bytes → our inbound messages / status updates, and our outbound
messages → the vendor's HTTP API. Nothing outside `adapters/` knows a vendor's field names.
"""

from __future__ import annotations

import abc
import datetime
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conversa.whatsapp.models import Line


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
    # Another line of the same provider this message belongs to, when the payload says so
    # (Meta sends every number of an app to one callback URL). None: the webhook's own line.
    line_id: int | None = None


@dataclass
class StatusUpdate:
    provider_message_id: str
    status: str  # sent / delivered / read / failed
    timestamp: datetime.datetime | None = None
    error_code: str = ""
    error_title: str = ""
    # Other ids the provider may use for the same message (GupShup: gsId vs WhatsApp id).
    alternate_ids: list[str] = field(default_factory=list)
    line_id: int | None = None  # as InboundMessage.line_id


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
    errors: list[dict[str, Any]] = field(default_factory=list)


def json_objects(body: bytes, parsed: ParsedWebhook) -> list[dict[str, Any]]:
    """A callback body as a list of JSON objects (one object or a batch); anything else in a batch
    is recorded in `parsed.errors` instead of breaking the rest."""
    data = json.loads(body)
    objects: list[dict[str, Any]] = []
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            objects.append(item)
        else:
            parsed.errors.append({"error": "callback item is not an object"})
    return objects


@dataclass
class SendResult:
    provider_message_id: str
    raw: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """A send the provider refused. `retryable` errors (rate limits, 5xx, network) are retried."""

    def __init__(self, title: str, *, code: str = "", retryable: bool = False, line_unusable: bool = False):
        super().__init__(f"{code} {title}".strip())
        self.code = str(code)
        self.title = title
        self.retryable = retryable
        # The line's credentials are rejected: every send will fail until an admin fixes them.
        self.line_unusable = line_unusable


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
        """Every message, status and template update the payload carries, in payload order."""

    def handshake(self, query: dict[str, str]) -> str | None:
        """GET verification (Meta): the challenge to echo, or None to refuse."""
        return None

    def download_media(self, media_ref: str) -> tuple[bytes, str]:
        raise SendError("This provider does not serve media.", retryable=False)

    # --- outbound ------------------------------------------------------------------------
    @abc.abstractmethod
    def send_text(self, *, to: str, text: str, reply_to: str = "") -> SendResult:
        """Send; return the provider's message id or raise SendError."""

    @abc.abstractmethod
    def send_media(self, *, to: str, media: OutboundMedia, reply_to: str = "") -> SendResult:
        """Send; return the provider's message id or raise SendError."""

    @abc.abstractmethod
    def send_template(self, *, to: str, template_name: str, template_id: str, language: str,
                      params: list[str]) -> SendResult:
        """Send an approved template with its body parameters, in order."""

    def send_list(self, *, to: str, menu: OutboundList) -> SendResult:
        """An interactive list; by default its numbered-text form (answered by typing the number)."""
        return self.send_text(to=to, text=menu.as_text())

    def fetch_templates(self) -> list[TemplateInfo]:
        return []

    def check_connection(self) -> str:
        """A short human-readable result; raises SendError when the provider cannot be reached."""
        return "ok"
