"""Bulk template sends: a job (line, approved template, parameters, who receives it), one row per
recipient (its own claimed, exactly-once send and its delivery statuses), and each line's opt-outs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from conversa.campaigns.models import Campaign
from conversa.contacts.models import Contact, ContactDatabase
from conversa.inbox.models import Conversation
from conversa.whatsapp.models import Line, MessageTemplate


def default_rate() -> int:
    return int(settings.CONVERSA_BULK_DEFAULT_RATE)


class BulkSend(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        CANCELLED = "cancelled", _("Cancelled")
        DONE = "done", _("Done")

    class Source(models.TextChoices):
        DATABASE = "database", _("Contact database")
        CSV = "csv", _("CSV file")

    name = models.CharField(_("name"), max_length=200)
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="bulk_sends")
    # Where customers' replies land (its general inbox): the line's campaign unless chosen otherwise.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="bulk_sends")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="bulk_sends")
    # One text per template parameter, with {placeholders} filled from each recipient's values.
    params = models.JSONField(default=list, blank=True)
    # A template with a media header: the one file every recipient gets as its header (checked and
    # stored as an outbound message's file is; providers fetch it by a signed link).
    header_media = models.FileField(upload_to="media/%Y/%m/", blank=True)
    header_kind = models.CharField(max_length=20, blank=True)  # image | video | document
    header_mime = models.CharField(max_length=100, blank=True)
    header_filename = models.CharField(max_length=255, blank=True)
    # One text per link button with a value ({placeholders} as in params).
    button_params = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    contact_database = models.ForeignKey(ContactDatabase, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")
    contact_filter = models.JSONField(default=dict, blank=True)
    source_name = models.CharField(max_length=255, blank=True)  # the uploaded file's name
    skip_open_conversations = models.BooleanField(default=True)
    rate_per_second = models.PositiveIntegerField(default=default_rate)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker running it and until when (renewed every round): one runner at a time; a dead
    # runner's job is taken over once this has passed.
    runner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # The provider asked us to slow down (429): nothing is sent before this.
    backoff_until = models.DateTimeField(null=True, blank=True)
    backoff_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("bulk send")
        verbose_name_plural = _("bulk sends")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"


class BulkRecipient(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Queued")
        SENDING = "sending", _("Sending")
        UNCONFIRMED = "unconfirmed", _("Not confirmed")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    class Reason(models.TextChoices):
        INVALID_NUMBER = "invalid_number", _("Invalid number")
        OPTED_OUT = "opted_out", _("Opted out")
        OPEN_CONVERSATION = "open_conversation", _("Already in an open conversation")
        DUPLICATE = "duplicate", _("Duplicate number")
        BAD_PARAMETERS = "bad_parameters", _("Parameters missing or invalid")
        CANCELLED = "cancelled", _("Job cancelled")

    job = models.ForeignKey(BulkSend, on_delete=models.CASCADE, related_name="recipients")
    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="+")  # the job's, for lookups
    row = models.PositiveIntegerField()  # its position in the source (1-based)
    phone = models.CharField(max_length=40)  # E.164 once valid; as given when not
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    params = models.JSONField(default=list, blank=True)
    # Its buttons' values as sent: [{"index", "sub_type", "value"}] (inbox.actions.replies.template_buttons).
    buttons = models.JSONField(default=list, blank=True)
    body = models.TextField(blank=True)  # the template as rendered for this recipient
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_title = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set (with status "sending") right before the provider call: the exactly-once claim.
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=200, null=True, blank=True)
    reply_conversation = models.ForeignKey(Conversation, on_delete=models.SET_NULL, null=True, blank=True,
                                           related_name="+")
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bulk send recipient")
        verbose_name_plural = _("bulk send recipients")
        ordering = ["row", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "phone"], condition=~Q(reason="duplicate"),
                                    name="bulk_recipient_once_per_job"),
        ]
        indexes = [
            models.Index(fields=["job", "status", "row"], name="bulk_recipient_progress_idx"),
            models.Index(fields=["line", "provider_message_id"], name="bulk_recipient_provider_idx",
                         condition=Q(provider_message_id__isnull=False)),
            models.Index(fields=["line", "phone", "sent_at"], name="bulk_recipient_reply_idx",
                         condition=Q(sent_at__isnull=False, replied_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.phone} ({self.status})"


class OptOut(models.Model):
    """A customer who asked not to receive bulk messages on this line (STOP / BAJA, or added by hand)."""

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="opt_outs")
    phone = models.CharField(_("phone"), max_length=20)
    keyword = models.CharField(max_length=40, blank=True)  # what the customer wrote, if it came from her
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [models.UniqueConstraint(fields=["line", "phone"], name="opt_out_once_per_line")]

    def __str__(self) -> str:
        return f"{self.phone} on {self.line_id}"
