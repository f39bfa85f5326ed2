"""One JSON reader for everything that comes from outside (API bodies, provider callbacks).

The standard library parses any nesting its recursion allows and turns `1e999` into infinity. A
body nested a thousand levels deep raised RecursionError (a 500), and non-finite numbers cannot be
stored in PostgreSQL's jsonb. This reader refuses both with a ValueError, so callers answer 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Deeper than any payload we accept (Meta's callbacks nest about 8 levels).
MAX_DEPTH = 64


class UnsafeJSON(ValueError):
    """The text is not JSON we accept (malformed, too deep, or a non-finite number)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON(f"number out of range: {text[:40]}")
    return value


def _no_constant(text: str) -> float:
    raise UnsafeJSON(f"{text} is not valid JSON")


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Iterative walk (a recursive one would be the very problem this module avoids)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(text: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that raises UnsafeJSON (a ValueError) for anything we do not accept."""
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels") from None
    except UnsafeJSON:
        raise
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError, bad types
        raise UnsafeJSON(f"not valid JSON: {exc}") from None
    if _depth_exceeds(data, max_depth):
        raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels")
    return data
