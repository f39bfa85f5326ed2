"""Provider adapters: every vendor detail lives behind `ProviderAdapter` (see base.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversa.whatsapp.adapters.base import ProviderAdapter

if TYPE_CHECKING:
    from conversa.whatsapp.models import Line


def get_adapter(line: Line) -> ProviderAdapter:
    from conversa.whatsapp.adapters import sandbox

    registry: dict[str, type[ProviderAdapter]] = {"sandbox": sandbox.SandboxAdapter}
    try:
        from conversa.whatsapp.adapters import meta

        registry["meta"] = meta.MetaAdapter
    except ImportError:
        pass
    try:
        from conversa.whatsapp.adapters import gupshup

        registry["gupshup"] = gupshup.GupshupAdapter
    except ImportError:
        pass
    kind = line.provider.kind
    if kind not in registry:
        raise LookupError(f"No adapter for provider kind '{kind}'.")
    return registry[kind](line)
