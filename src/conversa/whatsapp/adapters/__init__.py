"""Provider adapters: every vendor detail lives behind `ProviderAdapter` (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversa.whatsapp.adapters.base import ProviderAdapter

if TYPE_CHECKING:
    from conversa.whatsapp.models import Line


def adapter_classes() -> dict[str, type[ProviderAdapter]]:
    """Every adapter by provider kind (what the admin renders config fields from)."""
    from conversa.whatsapp.adapters import gupshup, meta, sandbox

    return {cls.kind: cls for cls in (meta.MetaAdapter, gupshup.GupshupAdapter, sandbox.SandboxAdapter)}


def adapter_class(kind: str) -> type[ProviderAdapter]:
    try:
        return adapter_classes()[kind]
    except KeyError:
        raise LookupError(f"No adapter for provider kind '{kind}'.") from None


def get_adapter(line: Line) -> ProviderAdapter:
    return adapter_class(line.provider.kind)(line)
