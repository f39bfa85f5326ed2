"""Webhook items about the provider account rather than a conversation: a template's category
changed, or the provider says the line no longer works (GupShup's mismatch: the number moved to
another account). Applied by the webhook processing (services._apply_item)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conversa.whatsapp.adapters.base import LineNotice, TemplateCategoryChange
from conversa.whatsapp.models import Line, MessageTemplate


def apply_template_category(line: Line, change: TemplateCategoryChange) -> int:
    """The template's category as the provider now has it (by provider id, else name + language,
    on every line of the provider: one account's templates are shared); templates updated."""
    if not change.category:
        return 0
    qs = MessageTemplate.objects.filter(line__provider=line.provider, provider_template_id=change.provider_template_id)
    if change.provider_template_id and qs.exists():
        return qs.update(category=change.category)
    if not change.name:
        return 0
    qs = MessageTemplate.objects.filter(line__provider=line.provider, name=change.name)
    if change.language:
        qs = qs.filter(language=change.language)
    return qs.update(category=change.category)


def apply_line_notice(line: Line, notice: LineNotice) -> None:
    """Shown to admins and agents like rejected credentials (Line.health_error)."""
    from conversa.whatsapp.services import flag_line_problem  # services applies these items

    flag_line_problem(line, notice.problem)


HANDLERS: dict[type, Callable[[Line, Any], object]] = {
    TemplateCategoryChange: apply_template_category,
    LineNotice: apply_line_notice,
}
