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
            # has a trigram index on PostgreSQL, created by migration 0002 only there. Phone and
            # email ride along (PostgreSQL only) so that walking the order to test the match
            # reads no table row (an index-only scan; decisions #74).
            models.Index(fields=["database", "first_name", "last_name", "id"], include=["phone", "email"],
                         name="contact_by_name_idx"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.phone or self.whatsapp_user_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactImport(models.Model):
    """One upload of a file into a contact database, and its progress.

    `rows_done` is the checkpoint: data rows read and committed so far, written in the same
    transaction as each batch, so a run that dies resumes after the last committed batch."""

    class Status(models.TextChoices):
        MAPPING = "mapping", _("waiting for the column mapping")
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    class OnDuplicate(models.TextChoices):
        SKIP = "skip", _("skip: keep the contact as it is")
        UPDATE = "update", _("update the contact with the file's values")

    database = models.ForeignKey(ContactDatabase, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Under the media storage with a server-chosen name; served by no URL.
    file = models.FileField(upload_to="contact-imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=8)  # csv | xlsx
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    total_rows = models.PositiveIntegerField(default=0)  # data rows counted at upload
    # column index (as text) → target: "phone", "first_name", "last_name", "email" or a custom field name
    mapping = models.JSONField(default=dict, blank=True)
    default_country = models.CharField(max_length=2, blank=True)
    on_duplicate = models.CharField(max_length=8, choices=OnDuplicate.choices, default=OnDuplicate.SKIP)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.MAPPING)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)  # rows not imported because of a problem
    message = models.TextField(blank=True)  # why the whole import failed
    run_seconds = models.FloatField(default=0)  # time spent importing, over every run
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")

    def __str__(self) -> str:
        return self.original_name


class ContactImportProblem(models.Model):
    """A row of the file that was not imported (or only partly), for the downloadable report."""

    contact_import = models.ForeignKey(ContactImport, on_delete=models.CASCADE, related_name="problems")
    row = models.PositiveIntegerField()  # as a spreadsheet numbers it: the header is row 1
    column = models.CharField(max_length=200, blank=True)
    value = models.CharField(max_length=200, blank=True)
    message = models.CharField(max_length=300)

    class Meta:
        indexes = [models.Index(fields=["contact_import", "row"], name="contact_import_problem_row_idx")]

    def __str__(self) -> str:
        return f"{self.row}: {self.message}"
