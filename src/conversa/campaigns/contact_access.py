"""Reads: the contact databases a supervisor or admin may list, import into and export."""

from __future__ import annotations

from django.utils.translation import gettext as _

from conversa.accounts.selectors import AnyUser, is_admin, is_supervisor
from conversa.campaigns.models import Campaign
from conversa.contacts.models import ContactDatabase, ContactImport
from conversa.core.errors import NotFound


def manageable_database_ids(user: AnyUser) -> list[int] | None:
    """None: every database (admins); else the databases of the campaigns she supervises."""
    if is_admin(user):
        return None
    if not is_supervisor(user):
        return []
    return sorted(set(Campaign.objects.filter(supervisors=user.pk).values_list("contact_database_id", flat=True)))


def manageable_database(user: AnyUser, database_id: int) -> ContactDatabase:
    """The database, or NotFound when it does not exist or is not hers (nothing leaks)."""
    allowed = manageable_database_ids(user)
    database = ContactDatabase.objects.filter(pk=database_id).first()
    if database is None or (allowed is not None and database.pk not in allowed):
        raise NotFound(_("Not found."))
    return database


def manageable_import(user: AnyUser, import_id: int) -> ContactImport:
    contact_import = ContactImport.objects.select_related("database").filter(pk=import_id).first()
    if contact_import is None:
        raise NotFound(_("Not found."))
    manageable_database(user, contact_import.database_id)
    return contact_import
