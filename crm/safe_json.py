"""JSON from the outside world, refused with a reason instead of crashing later.

`json.loads` raises RecursionError (not ValueError) on deeply nested input, and accepts what
PostgreSQL cannot store (NUL characters, lone surrogates): each of those used to become a 500.
`load_json` turns them into `JSONRejected`, whose text names the problem; `SafeJSONParser` does
the same for DRF views (a 400 through DRF's ParseError).
"""

import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Real payloads (WhatsApp, Matrix, our API) nest fewer than 12 levels.
MAX_DEPTH = 32
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The same in the raw text: NUL, or a surrogate encoded in UTF-8 (json.loads decodes bytes with
# "surrogatepass", so such bytes would become lone surrogates).
UNSTORABLE_BYTES = re.compile(b"\x00|\xed[\xa0-\xbf]")


class JSONRejected(ValueError):
    """The body is not JSON we accept; the text says why."""


def _refuse_constant(name: str):
    raise JSONRejected(f"{name} is not a JSON number")


def load_json(body: bytes | str, *, max_depth: int = MAX_DEPTH):
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except JSONRejected:
        raise
    except RecursionError:
        raise JSONRejected(f"the JSON is nested more than {max_depth} levels deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise JSONRejected(f"the body is not valid JSON: {exc}") from None
    if not _plainly_within_limits(body, max_depth):
        check_json(value, max_depth=max_depth)
    return value


def _plainly_within_limits(body: bytes | str, max_depth: int) -> bool:
    """True when the raw text alone shows `check_json` cannot refuse it (the common case, a
    few C-speed scans instead of a walk over every value): fewer opening brackets than the
    depth limit bounds the nesting, and without "\\u" escapes every character of every
    string is a raw character of the text, so a text free of NUL and surrogates stores."""
    if isinstance(body, bytes):
        if b"\\u" in body or UNSTORABLE_BYTES.search(body):
            return False
        return body.count(b"{") + body.count(b"[") <= max_depth
    if "\\u" in body or UNSTORABLE.search(body):
        return False
    return body.count("{") + body.count("[") <= max_depth


def check_json(value, *, max_depth: int = MAX_DEPTH) -> None:
    """Depth and storable text, checked without recursion (the input may be deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JSONRejected(f"the JSON is nested more than {max_depth} levels deep")
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise JSONRejected(f"the JSON is nested more than {max_depth} levels deep")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if UNSTORABLE.search(text):
        raise JSONRejected(
            "the JSON contains a NUL character or an unpaired surrogate (\\u0000, \\ud800…), "
            "which cannot be stored"
        )


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with `load_json`'s limits: a 400 naming the problem, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            body = stream.read() if stream is not None else b""
            return load_json(body.decode(encoding))
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding}: {exc}") from None
        except JSONRejected as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
