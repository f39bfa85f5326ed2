"""One JSON reader for everything that comes from outside (API bodies, provider callbacks).

The standard library parses any nesting its recursion allows and turns `1e999` into infinity. A
body nested a thousand levels deep raised RecursionError (a 500), and non-finite numbers cannot be
stored in PostgreSQL's jsonb. This reader refuses both with a ValueError, so callers answer 400.

It reads with orjson first (a webhook burst parses every body once at intake: the standard
library plus the depth walk were most of a Meta callback's parsing cost) and gives the standard
library the last word: whatever orjson refuses (malformed text, `NaN`, an overflowing number,
a lone surrogate, a UTF-16 body, nesting past its own limit) is read again by `json` with the
rules above, so what is accepted, and the error text of what is not, stay as they were. orjson
turns integers beyond 64 bits into floats, so a text with a run of 19 digits goes to `json` too.
The depth walk is skipped when the text has no more opening brackets than the limit allows.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# Deeper than any payload we accept (Meta's callbacks nest about 8 levels).
MAX_DEPTH = 64
# A number orjson may not hold exactly (it reads integers up to 64 bits; 18 digits always fit):
# found as a run of 19 zeros once every digit is a zero (a regex search cost 3 x orjson's parse).
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


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


def _opening_brackets(text: str | bytes | bytearray) -> int:
    """An upper bound of the nesting depth (brackets inside strings count too)."""
    if isinstance(text, str):
        return text.count("{") + text.count("[")
    return text.count(b"{") + text.count(b"[")


def _fast(text: str | bytes | bytearray) -> Any:
    """orjson's reading of `text`, or _REFUSED for anything the standard library must decide."""
    if (_LONG_DIGITS_TEXT.search(text) is not None if isinstance(text, str)
            else _LONG_RUN in text.translate(_DIGITS_AS_ZEROS)):
        return _REFUSED
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _REFUSED


_REFUSED = object()


def loads(text: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that raises UnsafeJSON (a ValueError) for anything we do not accept."""
    data = _fast(text)
    if data is not _REFUSED:
        # orjson refuses NaN, Infinity and overflowing numbers itself: only the depth is left.
        if _opening_brackets(text) > max_depth and _depth_exceeds(data, max_depth):
            raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels")
        return data
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels") from None
    except UnsafeJSON:
        raise
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError, bad types
        raise UnsafeJSON(f"not valid JSON: {exc}") from None
    if _opening_brackets(text) > max_depth and _depth_exceeds(data, max_depth):
        raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels")
    return data
