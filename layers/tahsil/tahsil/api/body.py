"""What a request body may be, checked once before any route parses it.

Every limit lives here (docs/api.md, "Request bodies", lists them):

- ``MAX_BODY_BYTES``: a larger body is a 413 ``PAYLOAD_TOO_LARGE``;
- ``Content-Type`` must be ``application/json`` (an optional ``charset=utf-8``) whenever a body
  is sent: anything else is a 415 ``UNSUPPORTED_MEDIA_TYPE`` naming the header to send;
- the bytes must be UTF-8 (no byte order mark, no UTF-16 or UTF-32);
- the JSON must be one object (every request body of this API is: ``null``, a list or a bare value
  is a 400 even where the body is optional), valid, nested at most ``MAX_JSON_DEPTH`` levels, with numbers of at most
  ``MAX_NUMBER_DIGITS`` digits, finite, and no key twice in one object (RFC 8259 leaves
  duplicates to the parser; "last one wins" would let a body mean two things).

Everything but the 413 and 415 is a 400 ``INVALID_REQUEST`` with ``param: "body"``. The checks
use the standard library's parser with its hooks; the route then validates the fields (pydantic).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from tahsil.kernel.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 32
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _Refused(ValueError):
    pass


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        name, eq, val = part.partition("=")
        if eq:
            params[name.strip().lower()] = val.strip().strip('"').lower()
    return kind.strip().lower(), params


def raw_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("request body is not valid base64", param="body") from None
    return body.encode("utf-8", "surrogatepass")


def _depth(text: str) -> int:
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"request body has the key {key!r} twice in one object; send each field once")
        out[key] = value
    return out


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _int(text: str) -> int:
    if _digits(text) > MAX_NUMBER_DIGITS:
        raise _Refused(f"request body has a number with more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if _digits(text) > MAX_NUMBER_DIGITS:
        raise _Refused(f"request body has a number with more than {MAX_NUMBER_DIGITS} digits")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("request body has a number too large to represent")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"request body is not valid JSON: {name} is not a JSON value")


def parse(raw: bytes) -> Any:
    """The JSON value of ``raw``, or an ``InvalidRequest`` naming what is wrong with it."""
    if raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
        raise InvalidRequest("request body must be UTF-8 without a byte order mark (it looks like UTF-16 or "
                             "UTF-32, or starts with a BOM)", param="body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"request body is not valid UTF-8 (byte {exc.start})", param="body") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"request body is nested deeper than {MAX_JSON_DEPTH} levels", param="body")
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                          parse_constant=_constant)
    except _Refused as exc:
        raise InvalidRequest(str(exc), param="body") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                             param="body") from None
    except (RecursionError, ValueError):
        raise InvalidRequest("request body is not valid JSON", param="body") from None


def unsupported(sent: str | None) -> None:
    """415 unless ``sent`` (a Content-Type header) is JSON in UTF-8."""
    kind, params = _media_type(sent or "")
    if kind != "application/json" or params.get("charset", "utf-8") != "utf-8":
        got = f"got {sent.strip()!r}" if sent and sent.strip() else "none was sent"
        raise UnsupportedMediaType(f"send the body as JSON with the header `Content-Type: application/json` ({got})",
                                   param="Content-Type")


def check(event: dict[str, Any]) -> None:
    """Refuse a body no route should parse: 413, 415 or 400, as the module says."""
    method = str(event.get("httpMethod") or "").upper()
    if method not in BODY_METHODS:
        return
    raw = raw_bytes(event) if event.get("body") else b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is {len(raw):,} bytes; the limit is {MAX_BODY_BYTES:,}", param="body")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    sent = (headers.get("content-type") or "").strip()
    # A body must say it is JSON; so must an empty POST that names another media type (a form post, say).
    if raw or (sent and method != "DELETE"):
        unsupported(sent)
    if not raw:
        return
    if not isinstance(parse(raw), dict):
        raise InvalidRequest("request body must be a JSON object", param="body")


def check_form(event: dict[str, Any]) -> None:
    """A route that takes an HTML form: the size limit, and the form's media type (415 otherwise)."""
    raw = raw_bytes(event) if event.get("body") else b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is {len(raw):,} bytes; the limit is {MAX_BODY_BYTES:,}", param="body")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    sent = (headers.get("content-type") or "").strip()
    if raw and _media_type(sent)[0] != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send the form as `Content-Type: application/x-www-form-urlencoded`",
                                   param="Content-Type")
