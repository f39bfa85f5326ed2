"""A template's body parameters as the console offers them: labelled as the admin described them
and prefilled from the conversation's contact where the admin mapped a contact field."""

from __future__ import annotations

import json
from typing import Any

from conversa.inbox.models import Conversation
from conversa.whatsapp.models import MessageTemplate

CONTACT_ATTRIBUTES = ("first_name", "last_name", "full_name", "email", "phone")


def _contact_value(conversation: Conversation, field: str) -> str:
    contact = conversation.contact
    if contact is None:  # not identified yet: what WhatsApp told us about the customer
        profile = conversation.customer_profile_name or ""
        known = {"first_name": profile.split(" ")[0], "full_name": profile, "phone": conversation.customer_phone}
        return str(known.get(field) or "")
    if field in CONTACT_ATTRIBUTES:
        return str(getattr(contact, field) or "")
    value: Any = (contact.custom or {}).get(field, "")
    return "" if value is None else str(value)


def param_specs(template: MessageTemplate, conversation: Conversation) -> list[dict[str, str]]:
    """[{"label", "value"}] per body parameter, in order ("" where the admin said nothing)."""
    described = [spec if isinstance(spec, dict) else {} for spec in (template.param_fields or [])]
    specs = []
    for index in range(template.param_count):
        spec = described[index] if index < len(described) else {}
        field = str(spec.get("field") or "")
        specs.append({"label": str(spec.get("label") or ""),
                      "value": _contact_value(conversation, field) if field else ""})
    return specs


def param_specs_json(template: MessageTemplate, conversation: Conversation) -> str:
    return json.dumps(param_specs(template, conversation))
