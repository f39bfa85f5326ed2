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


def contact_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`ContactSerializer(contacts, many=True).data` of plain rows (`contacts.selectors.ROW_FIELDS`),
    without DRF's per-field cost or a model instance per contact (a search page is 100 of them; the
    serializer stays the schema and the single-contact answers)."""
    _datetime = datetime_writer()
    return [{
        "id": r["id"], "database": r["database_id"], "phone": r["phone"], "first_name": r["first_name"],
        "last_name": r["last_name"], "full_name": f"{r['first_name']} {r['last_name']}".strip(),
        "email": r["email"] or None, "custom": r["custom"], "created_at": _datetime(r["created_at"]),
        "updated_at": _datetime(r["updated_at"]),
    } for r in rows]
