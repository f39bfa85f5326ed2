"""{% setup_checklist %}: the back office home's setup checklist (web.setup_checklist)."""

from __future__ import annotations

from typing import Any

from django import template

from conversa.web.setup_checklist import setup_checklist as build_checklist

register = template.Library()


@register.inclusion_tag("admin/setup_checklist.html", takes_context=True)
def setup_checklist(context: dict[str, Any]) -> dict[str, Any]:
    steps = build_checklist(context["request"])
    return {"steps": steps, "remaining": sum(not s.done for s in steps)}
