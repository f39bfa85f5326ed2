"""A contact in the REST API. The endpoints that serve it need what sits above contacts — the
campaign search is in campaigns/api.py, reading and editing a contact in inbox/api_contacts.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from conversa.contacts.models import Contact
from conversa.core.api import datetime_writer


class OptionalEmailField(serializers.EmailField):
    """`null` when the contact has no email: the schema says `format: email`, which "" is not."""

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return str(value) if value else None


class ContactSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(read_only=True)
    email = OptionalEmailField(read_only=True, allow_null=True)

    class Meta:
        model = Contact
        fields = ["id", "database", "phone", "first_name", "last_name", "full_name", "email", "custom",
                  "created_at", "updated_at"]
        read_only_fields = fields


def contact_list(contacts: Iterable[Contact]) -> list[dict[str, Any]]:
    """`ContactSerializer(contacts, many=True).data` without DRF's per-field cost (a search page is
    100 of them; the serializer stays the schema and the single-contact answers)."""
    _datetime = datetime_writer()
    return [{
        "id": c.pk, "database": c.database_id, "phone": str(c.phone), "first_name": str(c.first_name),
        "last_name": str(c.last_name), "full_name": c.full_name, "email": str(c.email) if c.email else None,
        "custom": c.custom, "created_at": _datetime(c.created_at), "updated_at": _datetime(c.updated_at),
    } for c in contacts]
