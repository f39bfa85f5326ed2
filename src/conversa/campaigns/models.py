from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from conversa.contacts.models import Contact, ContactDatabase


class Campaign(models.Model):
    class Routing(models.TextChoices):
        MANUAL = "manual", _("Manual capture from the general inbox")
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_BUSY = "least_busy", _("Least busy")

    name = models.CharField(_("name"), max_length=120, unique=True)
    contact_database = models.ForeignKey(ContactDatabase, on_delete=models.PROTECT, related_name="campaigns")
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="campaigns", blank=True, verbose_name=_("agents")
    )
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="supervised_campaigns", blank=True, verbose_name=_("supervisors")
    )
    whatsapp_enabled = models.BooleanField(_("WhatsApp enabled"), default=True)
    routing = models.CharField(_("routing"), max_length=20, choices=Routing.choices, default=Routing.MANUAL)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DispositionOption(models.Model):
    """A way a conversation can end ("calificación"). Management options open a form."""

    class Kind(models.TextChoices):
        PLAIN = "plain", _("Plain")
        MANAGEMENT = "management", _("Management (opens a form)")
        SCHEDULE = "schedule", _("Schedule a follow-up")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="disposition_options")
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PLAIN)
    positive = models.BooleanField(_("positive outcome"), default=False)
    # Management form: [{"name": "amount", "label": "Amount", "type": "number", "required": true}]
    form_fields = models.JSONField(_("form fields"), default=list, blank=True)
    sub_options = models.JSONField(_("sub-dispositions"), default=list, blank=True)
    order = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("disposition option")
        verbose_name_plural = _("disposition options")
        ordering = ["campaign", "order", "name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="disposition_option_unique_name")]

    def __str__(self) -> str:
        return self.name


class QuickReply(models.Model):
    """Our own canned answer, free to send inside the 24 h window.

    The body may use placeholders: {contact.first_name}, {contact.last_name}, {contact.full_name},
    {contact.email}, {contact.phone}, {agent.first_name}, {agent.full_name}, {campaign.name}.
    """

    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("body"))
    campaigns = models.ManyToManyField(Campaign, related_name="quick_replies", blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("quick reply")
        verbose_name_plural = _("quick replies")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Disposition(models.Model):
    """One entry of a contact's history (journey): how an interaction ended."""

    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, null=True, blank=True, related_name="dispositions"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="dispositions")
    option = models.ForeignKey(DispositionOption, on_delete=models.PROTECT, related_name="dispositions")
    sub_option = models.CharField(max_length=120, blank=True)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dispositions")
    notes = models.TextField(blank=True)
    form_answers = models.JSONField(default=dict, blank=True)
    follow_up_at = models.DateTimeField(null=True, blank=True)
    conversation = models.OneToOneField(
        "inbox.Conversation", on_delete=models.PROTECT, null=True, blank=True, related_name="disposition"
    )
    channel = models.CharField(max_length=20, default="whatsapp")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("disposition")
        verbose_name_plural = _("dispositions")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.option} ({self.created_at:%Y-%m-%d})"
