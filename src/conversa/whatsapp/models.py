from __future__ import annotations

import re

from django.db import models
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign

PLACEHOLDER_RE = re.compile(r"\{\{\s*(\d+)\s*\}\}")
# Named template parameters ({{first_name}}): sent with their parameter_name (Meta).
NAMED_PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class Provider(models.Model):
    """An account at a WhatsApp provider. `config` holds the vendor's credentials, the keys its
    adapter declares (`provider_fields`):

    - meta: {"access_token", "app_secret", "business_id"}
    - gupshup: {"api_key"}
    - sandbox: {} (optionally {"api_url"} to relay sends to an HTTP endpoint)
    """

    class Kind(models.TextChoices):
        META = "meta", _("Meta WhatsApp Cloud API")
        GUPSHUP = "gupshup", _("GupShup")
        SANDBOX = "sandbox", _("Sandbox (demo and tests)")

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    # Authenticates webhooks where the vendor signs nothing: GupShup's callback URL carries it as a token;
    # the sandbox, when it is set, requires an HMAC of the body made with it. Meta signs with its app secret.
    webhook_secret = models.CharField(_("webhook secret"), max_length=120, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class OutOfHours(models.TextChoices):
    QUEUE = "queue", _("Reply with the out-of-hours message and keep it in the general inbox")
    CLOSE = "close", _("Reply with the out-of-hours message and close it (closed by the system)")


class InteractiveMenu(models.Model):
    """A menu sent as a WhatsApp list before a conversation reaches a campaign ("menú interactivo").

    Each option leads to a campaign, to another menu, or to a closing message. A customer who does
    not choose within `timeout_minutes` goes to the line's own campaign.
    """

    name = models.CharField(_("name"), max_length=120, unique=True)
    header = models.CharField(_("header"), max_length=60, blank=True)
    body = models.TextField(_("body"), max_length=1024)
    footer = models.CharField(_("footer"), max_length=60, blank=True)
    button = models.CharField(_("button"), max_length=20, default="Options",
                              help_text=_("The label of the button that opens the list."))
    wrong_choice_message = models.TextField(_("wrong choice message"), blank=True,
                                            default="Please choose one of the options.")
    handoff_message = models.TextField(_("hand-off message"), blank=True,
                                       help_text=_("Sent when the customer is passed to a campaign."))
    timeout_minutes = models.PositiveIntegerField(_("timeout (minutes)"), default=10)

    class Meta:
        verbose_name = _("interactive menu")
        verbose_name_plural = _("interactive menus")

    def __str__(self) -> str:
        return self.name


class MenuOption(models.Model):
    class Action(models.TextChoices):
        CAMPAIGN = "campaign", _("Go to a campaign")
        SUBMENU = "submenu", _("Show another menu")
        CLOSE = "close", _("Send a message and close")

    menu = models.ForeignKey(InteractiveMenu, on_delete=models.CASCADE, related_name="options")
    title = models.CharField(_("title"), max_length=24)
    description = models.CharField(_("description"), max_length=72, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices, default=Action.CAMPAIGN)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    submenu = models.ForeignKey(InteractiveMenu, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")
    closing_message = models.TextField(_("closing message"), blank=True)

    class Meta:
        verbose_name = _("menu option")
        verbose_name_plural = _("menu options")
        ordering = ["menu", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["menu", "title"], name="menu_option_unique_title")]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        needed = {self.Action.CAMPAIGN: ("campaign", self.campaign_id),
                  self.Action.SUBMENU: ("submenu", self.submenu_id)}.get(self.Action(self.action))
        if needed and not needed[1]:
            raise ValidationError({needed[0]: _("Required for this action.")})
        if self.action == self.Action.SUBMENU and self.submenu_id == self.menu_id:
            raise ValidationError({"submenu": _("A menu cannot lead to itself.")})


class Line(models.Model):
    """A WhatsApp business number. `config` holds the provider-side ids:

    - meta: {"phone_number_id", "waba_id", "verify_token"}
    - gupshup: {"app_name", "app_id"}
    """

    name = models.CharField(_("name"), max_length=120)
    number = models.CharField(_("number"), max_length=20, unique=True, help_text=_("E.164"))
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="lines")
    config = models.JSONField(_("provider configuration"), default=dict, blank=True)
    campaign = models.OneToOneField(
        Campaign, on_delete=models.PROTECT, related_name="line", verbose_name=_("destination campaign")
    )
    welcome_message = models.TextField(_("welcome message"), blank=True,
                                       help_text=_("Sent when a new conversation opens within business hours."))
    goodbye_message = models.TextField(_("goodbye message"), blank=True,
                                       help_text=_("Sent when an agent closes the conversation."))
    time_group = models.ForeignKey(
        "campaigns.TimeGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="lines",
        verbose_name=_("business hours"), help_text=_("Empty: always open."))
    out_of_hours_message = models.TextField(_("out-of-hours message"), blank=True)
    menu = models.ForeignKey(
        InteractiveMenu, on_delete=models.SET_NULL, null=True, blank=True, related_name="lines",
        verbose_name=_("interactive menu"),
        help_text=_("Sent to every new conversation; the chosen option decides the campaign. "
                    "Customers who do not choose go to the line's campaign."))
    out_of_hours_action = models.CharField(
        _("out of hours"), max_length=20, choices=OutOfHours.choices, default=OutOfHours.QUEUE)
    active = models.BooleanField(_("active"), default=True)
    send_read_receipts = models.BooleanField(
        _("send read receipts"), default=False,
        help_text=_("When an agent opens a conversation with unread messages, the customer sees them as read "
                    "(blue ticks)."))
    # Set when the provider rejects the line's credentials (e.g. Meta 190); cleared by the next
    # successful send. Shown to admins and agents so nobody keeps sending into a dead line.
    health_error = models.TextField(_("provider problem"), blank=True)
    health_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("line")
        verbose_name_plural = _("lines")
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.name} {self.number}"


class MessageTemplate(models.Model):
    """A Meta-approved template: the only thing that may open a conversation or follow a closed window."""

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved")
        PENDING = "pending", _("Pending")
        REJECTED = "rejected", _("Rejected")
        PAUSED = "paused", _("Paused")
        DISABLED = "disabled", _("Disabled")

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="templates")
    provider_template_id = models.CharField(_("provider template id"), max_length=120)
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=15, default="es")
    category = models.CharField(_("category"), max_length=30, blank=True)
    header = models.TextField(_("header"), blank=True)
    body = models.TextField(_("body"))
    footer = models.TextField(_("footer"), blank=True)
    buttons = models.JSONField(_("buttons"), default=list, blank=True)
    # What each body parameter is, for the agent: a label, and optionally the contact field that
    # prefills it in the console (the agent can still change it). Kept by the provider sync.
    param_fields = models.JSONField(
        _("parameter fields"), default=list, blank=True,
        help_text=_('One entry per body parameter, in order: {"label": "Customer name", "field": "first_name"}. '
                    "field (optional) prefills it from the conversation's contact: first_name, last_name, "
                    "full_name, email, phone or a custom field of the campaign's contact database."))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.APPROVED)
    status_reason = models.TextField(blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("approved template")
        verbose_name_plural = _("approved templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["line", "provider_template_id"], name="template_unique_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def param_names(self) -> list[str]:
        """The body's named parameters in order of first use ([] for positional {{1}} templates)."""
        return list(dict.fromkeys(NAMED_PLACEHOLDER_RE.findall(self.body)))

    @property
    def param_count(self) -> int:
        if names := self.param_names:
            return len(names)
        numbers = {int(n) for n in PLACEHOLDER_RE.findall(self.body)}
        return max(numbers) if numbers else 0

    def render(self, params: list[str]) -> str:
        if names := self.param_names:
            values = dict(zip(names, params, strict=False))
            return NAMED_PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), self.body)
        return PLACEHOLDER_RE.sub(lambda m: params[int(m.group(1)) - 1], self.body)


class WebhookEvent(models.Model):
    """A provider callback exactly as received: stored before anything else, then claimed in
    batches and processed by the workers (whatsapp.services.process_webhook_batch).

    A crash between storing and processing loses nothing: a row whose `processed_at` is still empty
    is claimed again once its claim is released, or its claimer's heartbeat went stale.
    """

    # Neither has an index of its own (each costs every message, inserted and marked processed):
    # webhook_event_unique_body leads with the line (the cascade); the sweep and the backlog read
    # unprocessed events only (webhook_pending_idx, webhook_unprocessed_idx), never by received_at alone
    # (decisions #78).
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="webhook_events", db_index=False)
    provider_kind = models.CharField(max_length=20)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    headers = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The worker processing it (its heartbeat id) and since when; empty when nobody holds it. Both
    # nullable, so inserts that name only the columns they know (whatsapp.intake) need no default.
    claimed_by = models.CharField(max_length=64, null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A byte-identical redelivery is the same event: store it once.
            models.UniqueConstraint(fields=["line", "body_sha256"], name="webhook_event_unique_body"),
        ]
        indexes = [
            models.Index(fields=["processed_at", "received_at"], name="webhook_unprocessed_idx"),
            # The workers' claim: the oldest unprocessed events, in order, without scanning the done ones.
            models.Index(fields=["id"], condition=models.Q(processed_at__isnull=True), name="webhook_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_kind} event #{self.pk} ({'processed' if self.processed_at else 'pending'})"


class PendingStatus(models.Model):
    """A delivery status that arrived before we knew the message it belongs to.

    Applied (and deleted) as soon as a message with that provider id is stored.
    """

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="pending_statuses")
    provider_message_id = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=20)
    error_code = models.CharField(max_length=40, blank=True)
    error_title = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.status} for {self.provider_message_id}"


class RejectedWebhook(models.Model):
    """A sample of a callback that could never be stored (unreadable, too large): what support needs
    to tell the provider what went wrong, bounded so hostile traffic cannot fill the database
    (`whatsapp.rejections`)."""

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="rejected_webhooks")
    received_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300)
    # Whether the provider's signature checked out (a 413 is answered before the body is read).
    verified = models.BooleanField(default=False)
    size = models.BigIntegerField(help_text="Bytes received, or declared by Content-Length when not read.")
    headers = models.JSONField(default=dict, blank=True)
    body_sample = models.BinaryField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["line", "received_at"], name="rejected_webhook_line_idx")]

    def __str__(self) -> str:
        return f"rejected {self.status_code} #{self.pk}"


class WebhookItemFailure(models.Model):
    """One item of a stored webhook (a message, status or template update) that could not be
    applied while the rest of its batch was: kept with its error, retried with back-off by the
    sweep (`whatsapp.sweeps.retry_failed_webhook_items`), shown to admins and counted on /healthz/.
    The item itself is read again from the event's body: `position` is its index among the items
    of its kind, which reading the same bytes always gives again."""

    class Kind(models.TextChoices):
        MESSAGE = "message", _("Message")
        STATUS = "status", _("Status")
        TEMPLATE = "template", _("Template update")

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="item_failures")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    position = models.PositiveIntegerField()
    item_ref = models.CharField(max_length=200, blank=True, help_text="The provider's id of the item.")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(auto_now_add=True)
    # When the sweep tries again; empty once given up (or resolved).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "kind", "position"],
                                               name="webhook_item_failure_unique_item")]
        indexes = [models.Index(fields=["resolved_at", "next_attempt_at"], name="webhook_item_failure_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.position} of event #{self.event_id}"
