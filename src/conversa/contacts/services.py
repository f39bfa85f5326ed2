"""Contact rules: custom-field validation, creation and edits."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from conversa.contacts.fields import clean_values
from conversa.contacts.models import Contact, ContactDatabase
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.core.errors import Conflict, InvalidInput

STANDARD_FIELDS = ("first_name", "last_name", "email")


class ContactError(InvalidInput):
    """A contact could not be saved (400); `errors` maps field name → message, `field` is the first.
    The one place contact problems become the API's error: callers let it through, or nest it."""

    def __init__(self, errors: dict[str, str], *, prefix: str = ""):
        field, message = next(iter(errors.items()))
        super().__init__(message, field=f"{prefix}{field}", extra={"errors": errors})
        self.errors = errors

    def nested_under(self, name: str) -> ContactError:
        """The same problems for a contact sent inside another body (`contact.email`)."""
        return ContactError(self.errors, prefix=f"{name}.")


class ContactExists(Conflict):
    """The database already has a contact with that phone (409 naming it)."""

    def __init__(self, contact: Contact):
        super().__init__(_("A contact with phone %(phone)s already exists (id %(contact)s).")
                         % {"phone": contact.phone or contact.whatsapp_user_id, "contact": contact.pk},
                         extra={"contact": contact.pk})
        self.contact = contact


def _clean_custom(database: ContactDatabase, values: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    cleaned, problems = clean_values(database.fields, values, partial=partial, keep_empty=True, max_text=500)
    errors: dict[str, str] = {}
    for problem in problems:
        if problem.problem == "unknown":
            errors[problem.name] = (_("Unknown field '%(field)s' for contact database '%(database)s'.")
                                    % {"field": problem.name, "database": database.name})
        elif problem.problem == "required":
            errors[problem.name] = _("This field is required.")
        else:
            errors[problem.name] = _("Invalid %(kind)s: %(error)s") % {"kind": problem.kind, "error": problem.detail}
    if errors:
        raise ContactError(errors)
    return cleaned


def _clean_standard(data: dict[str, Any]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in STANDARD_FIELDS:
        if name not in data:
            continue
        value = "" if data[name] is None else str(data[name]).strip()
        if name == "email" and value:
            try:
                validate_email(value)
            except ValidationError:
                errors[name] = _("Enter a valid email address.")
        if len(value) > 100:
            errors[name] = _("At most 100 characters.")
        cleaned[name] = value
    if errors:
        raise ContactError(errors)
    return cleaned


def split_contact_data(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Standard fields vs custom values; custom ones may come flat or under "custom"."""
    standard = {k: v for k, v in data.items() if k in STANDARD_FIELDS}
    given = data.get("custom") or {}
    if not isinstance(given, dict):
        # A multipart form sends every value as text: "custom" must still be an object.
        raise ContactError({"custom": _("Custom fields must be an object of field name → value.")})
    custom = dict(given)
    custom.update({k: v for k, v in data.items() if k not in (*STANDARD_FIELDS, "custom", "phone", "contact")})
    return standard, custom


def create_contact(*, database: ContactDatabase, phone: str, data: dict[str, Any],
                   whatsapp_user_id: str = "") -> Contact:
    """A new contact. `phone` may be empty only with `whatsapp_user_id` (a customer WhatsApp knows by
    user id alone); the contact is then unique by that id in the database."""
    e164 = ""
    if phone or not whatsapp_user_id:
        try:
            e164 = normalize_phone(phone)
        except InvalidPhone as exc:
            raise ContactError({"phone": str(exc)}) from exc
    standard, custom = split_contact_data(data)
    fields = _clean_standard(standard)
    values = _clean_custom(database, custom, partial=False)
    if not fields.get("first_name"):
        raise ContactError({"first_name": _("This field is required.")})
    same = {"phone": e164} if e164 else {"whatsapp_user_id": whatsapp_user_id}
    existing = Contact.objects.filter(database=database, **same).first()
    if existing:
        raise ContactExists(existing)
    try:
        with transaction.atomic():
            return Contact.objects.create(database=database, phone=e164, whatsapp_user_id=whatsapp_user_id,
                                          custom=values, **fields)
    except IntegrityError as exc:  # lost a race with another agent creating the same customer
        clash = Contact.objects.filter(database=database, **same).first() or Contact.objects.filter(
            database=database, whatsapp_user_id=whatsapp_user_id).exclude(whatsapp_user_id="").first()
        if clash is None:
            raise
        raise ContactExists(clash) from exc


def update_contact(*, contact: Contact, data: dict[str, Any]) -> Contact:
    standard, custom = split_contact_data(data)
    fields = _clean_standard(standard)
    values = _clean_custom(contact.database, custom, partial=True)
    if "phone" in data:
        try:
            new_phone = normalize_phone(str(data["phone"]))
        except InvalidPhone as exc:
            raise ContactError({"phone": str(exc)}) from exc
        clash = Contact.objects.filter(database=contact.database, phone=new_phone).exclude(pk=contact.pk)
        if clash.exists():
            raise ContactError({"phone": _("Another contact in this database has %(phone)s.") % {"phone": new_phone}})
        contact.phone = new_phone
    if "first_name" in fields and not fields["first_name"]:
        raise ContactError({"first_name": _("This field is required.")})
    for key, value in fields.items():
        setattr(contact, key, value)
    contact.custom = {**(contact.custom or {}), **values}
    contact.save()
    return contact
