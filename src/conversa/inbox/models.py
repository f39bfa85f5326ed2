from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign
from conversa.contacts.models import Contact
from conversa.whatsapp.models import Line, MessageTemplate


class Conversation(models.Model):
    class Status(models.TextChoices):
        MENU = "menu", _("In the menu")  # choosing an option of the line's interactive menu
        NEW = "new", _("New")  # in the campaign's general inbox
        ATTENDED = "attended", _("Attended")  # in an agent's personal inbox
        CLOSED = "closed", _("Closed")

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="conversations")
    # No index of its own (each index costs every message: no update of a conversation is HOT):
    # conv_general_inbox_idx and conv_report_idx lead with it, for lookups and PROTECT checks (#78).
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="conversations",
                                 db_index=False)
    # Who the customer is: the phone when the provider gives it, else the provider's stable user id
    # (Meta's business-scoped user id of customers who show only a username); either may be empty.
    # Equality only: on PostgreSQL their `_like` (varchar_pattern_ops) twins are dropped by
    # inbox/0013 — nothing reads them with a prefix LIKE (searches use `contains`).
    customer_phone = models.CharField(max_length=20, db_index=True, blank=True)
    customer_user_id = models.CharField(max_length=200, blank=True, db_index=True)
    customer_username = models.CharField(max_length=200, blank=True)
    customer_profile_name = models.CharField(max_length=200, blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversations",
        db_index=False,  # conv_personal_inbox_idx leads with it
    )
    # No index of its own (#78): its readers also name a campaign or agent (composite indexes below),
    # are an expiry range (conv_expiry_due_idx) or the menu sweep (conv_in_menu_idx); the nightly
    # housekeeping (close_stale_conversations) reads the table once.
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    is_outbound = models.BooleanField(default=False)
    # The interactive menu the customer is answering (status "menu"), else empty.
    menu = models.ForeignKey("whatsapp.InteractiveMenu", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    attended_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by_system = models.BooleanField(default=False)
    # When a person first wrote to the customer (an agent's reply or template; welcome and goodbye
    # messages have no sender): the reports' first response time, stored so they read no messages.
    first_response_at = models.DateTimeField(null=True, blank=True)
    # The 24 h customer-service window runs from the customer's last message.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    # Its own index stays: search walks it backwards to its first matches across campaigns (#78).
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    # Messages from the customer the assigned agent has not opened yet.
    unread_count = models.PositiveIntegerField(default=0)
    # Set by the expiry sweep when the 24 h window closed unanswered (or an outbound template got
    # no answer): still open, but only an approved template (or the customer) brings it back.
    # `expired_at` (the last expiry) stays after that, so reports count conversations that expired.
    expired = models.BooleanField(default=False)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            # At most one open conversation per customer and line: inbound joins it.
            models.UniqueConstraint(
                fields=["line", "customer_phone"],
                condition=~Q(status="closed") & ~Q(customer_phone=""),
                name="conversation_one_open_per_customer_line",
            ),
            # Customers known only by user id: one open conversation each, too.
            models.UniqueConstraint(
                fields=["line", "customer_user_id"],
                condition=~Q(status="closed") & Q(customer_phone="") & ~Q(customer_user_id=""),
                name="conversation_one_open_per_user_id_line",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "last_message_at"], name="conv_general_inbox_idx"),
            models.Index(fields=["agent", "status", "last_message_at"], name="conv_personal_inbox_idx"),
            # The inboxes' exact ORDER BY, one ordered range per campaign / agent (inbox.selectors).
            # `created_at` included: the live report's waiting count and longest wait read this
            # index alone (reports.selectors.live_snapshot, decisions #70).
            models.Index(fields=["campaign", "last_message_at", "id"], name="conv_new_by_campaign_idx",
                         include=["created_at"], condition=Q(status="new", agent__isnull=True)),
            # Assigned rows only: a waiting one is in no personal inbox, and with it the planner took
            # this index for `agent_id IS NULL` (misestimated: statistics hold no index's share of
            # NULLs), reading every waiting row for the general inbox and the live report (#70).
            models.Index(fields=["agent", "last_message_at", "id"], name="conv_open_by_agent_idx",
                         condition=~Q(status="closed") & Q(agent__isnull=False)),
            # The live report's attended counts by campaign and agent (reports.selectors._live_counts):
            # an index-only scan of the attended rows alone, not a visit to each one's table page.
            models.Index(fields=["campaign", "agent"], name="conv_attended_idx", condition=Q(status="attended")),
            # The reports' conversations of a date range (reports.selectors): on PostgreSQL an
            # index-only scan, every figure they read included.
            models.Index(fields=["campaign", "created_at"], name="conv_report_idx",
                         include=["id", "agent", "status", "is_outbound", "closed_by_system", "attended_at",
                                  "closed_at", "first_response_at", "expired_at"]),
            # The expiry sweep (inbox.sweeps.expire_unanswered, every few seconds): open, not yet
            # expired conversations idle for a day, a range of this small index.
            models.Index(fields=["last_message_at"], name="conv_expiry_due_idx",
                         condition=Q(status__in=["new", "attended"], expired=False)),
            # The menu timeout sweep (inbox.actions.menu.route_menu_timeouts, every few seconds): the
            # few conversations in a menu; other rows have no entry, so their updates never write one.
            models.Index(fields=["id"], name="conv_in_menu_idx", condition=Q(status="menu")),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer_phone or self.customer_username or self.customer_user_id} ({self.status})"

    @property
    def customer_name(self) -> str:
        if self.contact_id and self.contact:
            return self.contact.full_name or self.customer_profile_name or self.customer_username
        return self.customer_profile_name or self.customer_username

    @property
    def customer_label(self) -> str:
        """What to call the customer on screen: a name, else the username, the phone, the user id."""
        return self.customer_name or self.customer_phone or self.customer_user_id


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "in", _("Inbound")
        OUTBOUND = "out", _("Outbound")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        DOCUMENT = "document", _("Document")
        AUDIO = "audio", _("Audio")
        VIDEO = "video", _("Video")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACTS = "contacts", _("Contacts")
        INTERACTIVE = "interactive", _("Interactive reply")
        BUTTON = "button", _("Button reply")
        REACTION = "reaction", _("Reaction")
        TEMPLATE = "template", _("Template")
        ORDER = "order", _("Order")
        # Something that happened to the customer's account (a new number): a line in the thread.
        SYSTEM = "system", _("System event")
        UNSUPPORTED = "unsupported", _("Unsupported")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        PLAYED = "played", _("Played")  # a voice note the customer listened to
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")
        # The provider may or may not have the message (a timeout after the request was written, a
        # worker killed mid-call): never sent again by itself; a status callback moves it forward.
        UNCONFIRMED = "unconfirmed", _("Not confirmed")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(blank=True)
    # Structured content by kind (location coordinates, interactive ids, template params...).
    payload = models.JSONField(default=dict, blank=True)
    media = models.FileField(upload_to="media/%Y/%m/", blank=True)
    media_mime = models.CharField(max_length=120, blank=True)
    media_filename = models.CharField(max_length=255, blank=True)
    # Provider-side media id still to download (inbound); empty once fetched.
    media_provider_id = models.CharField(max_length=200, blank=True)
    template = models.ForeignKey(MessageTemplate, on_delete=models.SET_NULL, null=True, blank=True)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    # Another id the provider uses for the same sent message (GupShup: WhatsApp's id, which
    # receipts arriving a week later carry alone).
    provider_alias_id = models.CharField(max_length=200, null=True, blank=True)
    # Browser-generated key: an agent's double-submit on a flaky connection stores one message.
    client_message_id = models.CharField(max_length=64, null=True, blank=True)
    reply_to = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=40, blank=True)
    error_title = models.TextField(blank=True)
    send_attempts = models.PositiveIntegerField(default=0)
    # Set while a worker is calling the provider for this message: no second worker sends it.
    send_claimed_at = models.DateTimeField(null=True, blank=True)
    # When the next send attempt is due; the worker's sweep re-enqueues overdue queued messages.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the last provider call for it started (set with the claim, before the call): a claim that
    # expires after it means the call may have been made, so the message is unconfirmed, not re-sent.
    send_started_at = models.DateTimeField(null=True, blank=True)
    # When the agent was offered to resend an unconfirmed message nobody confirmed in time.
    resend_offered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    provider_timestamp = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # The customer (or the business, from the WhatsApp app) edited or deleted it; the earlier
    # texts stay in payload["history"].
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        indexes = [
            # The thread's order (inbox.selectors._thread): pages of it are ranges of this index.
            models.Index(F("conversation"), Coalesce("provider_timestamp", "created_at"), F("id"),
                         name="msg_thread_order_idx"),
            models.Index(fields=["line", "provider_alias_id"], name="msg_provider_alias_idx",
                         condition=Q(provider_alias_id__isnull=False)),
            # The worker's sweeps (inbox.sweeps, every few seconds) read only these few rows, never
            # the whole table: sends still queued, unconfirmed ones not yet offered for resending,
            # and customers' attachments still to download.
            models.Index(fields=["next_attempt_at"], name="msg_send_pending_idx",
                         condition=Q(status="queued", provider_message_id__isnull=True)),
            models.Index(fields=["status_changed_at"], name="msg_unconfirmed_idx",
                         condition=Q(status="unconfirmed", resend_offered_at__isnull=True)),
            models.Index(fields=["id"], name="msg_media_pending_idx",
                         condition=Q(direction="in", media="") & ~Q(media_provider_id="")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_unique_provider_id_per_line",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="message_unique_client_id_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} #{self.pk}"

    @property
    def media_path(self) -> str:
        """Where people fetch the file: a view that checks they may see the conversation (the
        storage's own URL is never handed out)."""
        return reverse("api-message-media", kwargs={"pk": self.pk}) if self.media else ""


class AuditEntry(models.Model):
    """Audit trail: who did what, when, on which conversation (or contact)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        CAPTURED = "captured", _("Captured")
        ASSIGNED = "assigned", _("Assigned")
        MESSAGE_SENT = "message_sent", _("Message sent")
        IDENTIFIED = "identified", _("Contact identified")
        CONTACT_EDITED = "contact_edited", _("Contact edited")
        TRANSFERRED = "transferred", _("Transferred")
        CLOSED = "closed", _("Closed")
        OUTBOUND_STARTED = "outbound_started", _("Outbound conversation started")
        ROUTED = "routed", _("Routed by the interactive menu")
        MEDIA_RETRIED = "media_retried", _("Attachment download retried")
        MESSAGE_RESENT = "message_resent", _("Unconfirmed message sent again")
        EXPIRED = "expired", _("Expired (24-hour window closed unanswered)")
        REACTIVATED = "reactivated", _("Reactivated with a template")
        JOINED = "joined", _("Supervisor joined")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on #{self.conversation_id}"


class Note(models.Model):
    """A private note in a conversation's thread: read by the campaign's agents and supervisors who
    see the conversation, never by the customer. Its own table (not a Message kind), so sending,
    delivery, unread counts, reports, exports and the simulator, which read messages, cannot leak it
    (decisions #56)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    # Colleagues the note @mentions (each notified when it is written).
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="note_thread_idx")]

    def __str__(self) -> str:
        return f"note #{self.pk} on #{self.conversation_id}"
