"""The API's JSON renderer (orjson) answers what DRF's renderer answered (decisions #62)."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from conversa.core.renderers import JSONRenderer

NOW = datetime.datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=datetime.UTC)


def test_same_bytes_as_drf_for_what_the_api_answers():
    data = {"text": "hola <b> & \"ñ\" 😀 \\ /", "controls": "".join(chr(i) for i in range(32)) + "\x7f",
            "n": None, "ok": True, "i": -3, "f": 1.5, "big": 2**63 - 1, "list": [{"nested": [1, "x"]}],
            "at": NOW, "naive": NOW.replace(tzinfo=None), "day": NOW.date(), "time": NOW.time(),
            "lazy": gettext_lazy("Capture"), "decimal": decimal.Decimal("1.10"), "uuid": uuid.UUID(int=5),
            "safe": mark_safe("<i>"), "tuple": (1, 2), "bytes": b"ab"}
    assert JSONRenderer().render(data) == DRFJSONRenderer().render(data)


def test_line_and_paragraph_separators_are_escaped_as_drf_does():
    rendered = JSONRenderer().render({"text": "a\u2028b\u2029c"})
    assert rendered == b'{"text":"a\\u2028b\\u2029c"}'
    assert json.loads(rendered) == {"text": "a\u2028b\u2029c"}


def test_what_orjson_refuses_is_drfs_answer():
    for data in ({1: "an int key"}, {"huge": 2**70}):
        assert JSONRenderer().render(data) == DRFJSONRenderer().render(data)


def test_indented_answers_and_no_data_are_drfs():
    context = {"indent": 2}
    assert JSONRenderer().render({"a": [1]}, "application/json; indent=2", context) == \
        DRFJSONRenderer().render({"a": [1]}, "application/json; indent=2", context)
    assert JSONRenderer().render(None) == b""
