"""conversa.core.safejson reads with orjson first and lets the standard library decide the rest:
what it accepts, how it reads it, and the errors it gives must be the standard library reader's
(issue 10, decisions #75)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversa.core import safejson


def stdlib_reading(text: str | bytes) -> tuple[str, Any]:
    """What the reader did before orjson: json with the finite-number hooks, then the depth walk."""
    def finite(value: str) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise safejson.UnsafeJSON(f"number out of range: {value[:40]}")
        return number

    def constant(value: str) -> float:
        raise safejson.UnsafeJSON(f"{value} is not valid JSON")

    try:
        data = json.loads(text, parse_float=finite, parse_constant=constant)
    except RecursionError:
        return "refused", f"JSON nested deeper than {safejson.MAX_DEPTH} levels"
    except safejson.UnsafeJSON as exc:
        return "refused", str(exc)
    except (ValueError, TypeError) as exc:
        return "refused", f"not valid JSON: {exc}"
    if safejson._depth_exceeds(data, safejson.MAX_DEPTH):
        return "refused", f"JSON nested deeper than {safejson.MAX_DEPTH} levels"
    return "read", data


def reading(text: str | bytes) -> tuple[str, Any]:
    try:
        return "read", safejson.loads(text)
    except safejson.UnsafeJSON as exc:
        return "refused", str(exc)


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    # json.dumps tells 1 from 1.0 and keeps key order, which == does not.
    return a[0] == b[0] and (a[1] == b[1] if a[0] == "refused" else json.dumps(a[1]) == json.dumps(b[1]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=json_values, compact=st.booleans())
def test_any_json_document_is_read_as_the_standard_library_reads_it(value: Any, compact: bool) -> None:
    text = json.dumps(value, separators=(",", ":") if compact else None)
    for form in (text, text.encode()):
        assert same(reading(form), stdlib_reading(form))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(alphabet='[]{}",:0123456789.eE+-tfnaulrsIiNy \\ud\t', max_size=64))
def test_any_text_is_accepted_or_refused_as_the_standard_library_does(raw: str | bytes) -> None:
    assert same(reading(raw), stdlib_reading(raw))


@pytest.mark.parametrize("text", [
    b"123456789012345678901234567890",  # beyond 64 bits: orjson would make it a float
    b"-9999999999999999999",
    b'{"id": 18446744073709551616}',
    b'"\\ud800"',  # a lone surrogate: orjson refuses it, json reads it (checks.clean_text replaces it)
    '"é"'.encode("utf-16"),  # json detects UTF-16; orjson takes only UTF-8
    b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
    b"[1e999]", b"[-1e999]", b"[NaN]", b"[Infinity]", b"[-Infinity]",
    b"[" * 65 + b"]" * 65,  # one level too deep
    b"[" * 64 + b"]" * 64,  # the deepest accepted
    b"[" * 3000 + b"]" * 3000,  # past both readers' own recursion limits
    b'{"text": "' + b"[" * 200 + b'"}',  # brackets inside a string are no nesting
    b"", b"{", b"\xff", b'{"a": 1}garbage', b"[1,]", b"01", b"'a'",
])
def test_edge_cases_are_read_as_the_standard_library_reads_them(text: bytes) -> None:
    assert same(reading(text), stdlib_reading(text))


def test_refusals_name_the_problem() -> None:
    with pytest.raises(safejson.UnsafeJSON, match="number out of range: 1e999"):
        safejson.loads(b'{"amount": 1e999}')
    with pytest.raises(safejson.UnsafeJSON, match="NaN is not valid JSON"):
        safejson.loads(b'{"amount": NaN}')
    with pytest.raises(safejson.UnsafeJSON, match="nested deeper than 64 levels"):
        safejson.loads(b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}")
    with pytest.raises(safejson.UnsafeJSON, match="not valid JSON"):
        safejson.loads(b'{"entry": [}')
