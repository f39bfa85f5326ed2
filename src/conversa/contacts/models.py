from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ContactDatabase(models.Model):
    """A campaign's contact base. `fields` defines its custom columns.

    Each custom field: {"name": "dni", "label": "DNI", "type": "text|number|email|date|choice",
    "required": false, "choices": ["a", "b"]}.
    """

    name = models.CharField(_("name"), max_length=120, unique=True)
    fields = models.JSONField(_("custom fields"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact database")
        verbose_name_plural = _("contact databases")

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    database = models.ForeignKey(ContactDatabase, on_delete=models.PROTECT, related_name="contacts")
    # Empty only for a customer WhatsApp knows by user id alone (no phone shared): then
    # `whatsapp_user_id` identifies her (docs/decisions.md #42, addendum).
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("E.164, e.g. +5491155550001"))
    whatsapp_user_id = models.CharField(
        _("WhatsApp user id"), max_length=200, blank=True,
        help_text=_("For customers who write without sharing a phone number."))
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("email"), blank=True)
    custom = models.JSONField(_("custom values"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["database", "phone"], condition=~Q(phone=""),
                                    name="contact_unique_phone_per_database"),
            models.UniqueConstraint(fields=["database", "whatsapp_user_id"], condition=~Q(whatsapp_user_id=""),
                                    name="contact_unique_user_id_per_database"),
            models.CheckConstraint(condition=~Q(phone="") | ~Q(whatsapp_user_id=""),
                                   name="contact_has_phone_or_user_id"),
        ]
        indexes = [
            # The search's order (contacts.selectors): pages are ranges of it. The substring match
            # has a trigram index on PostgreSQL, created by migration 0002 only there.
            models.Index(fields=["database", "first_name", "last_name", "id"], name="contact_by_name_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.phone or self.whatsapp_user_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
