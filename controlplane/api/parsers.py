"""The API's JSON parser: a request body is a JSON object of bounded depth, or a 400 that says so.

Python's json module recurses once per nesting level, so a 20 kB `[[[...]]]` would raise RecursionError
(a 500) before any view runs; the depth is checked on the raw text first, without recursion.
"""

from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}":
            depth -= 1
    return deepest


class StrictJSONParser(JSONParser):
    """A JSON object at most MAX_DEPTH deep; anything else is a ParseError (400 `parse_error`)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"the body is not valid {encoding} text: {exc}") from None
        if nesting_depth(text) > MAX_DEPTH:
            raise ParseError(f"the JSON body is nested more than {MAX_DEPTH} levels deep")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ParseError('the body must be a JSON object ({"field": value, ...})', code="invalid")
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")
