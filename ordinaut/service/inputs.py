"""The input boundary: what no request may carry, checked once for the API, MCP and the CLI.

PostgreSQL refuses U+0000 in ``text`` and ``jsonb``, a lone surrogate (U+D800..U+DFFF) cannot
be encoded as UTF-8, JSON has no NaN or Infinity, deep nesting exhausts recursion (Python's
and jsonb's), and date arithmetic overflows near year 9999. So, wherever it comes from:

* every string and every object key is free of NUL and of lone surrogates;
* every number is finite (``NaN``, ``Infinity`` and ``1e999`` are refused) and an integer has
  at most 4,300 digits (Python's own conversion limit);
* objects and arrays nest at most :data:`~ordinaut.limits.MAX_JSON_DEPTH` deep (the body or
  the tool arguments being level 1);
* every instant read lies in [:data:`~ordinaut.limits.EARLIEST`,
  :data:`~ordinaut.limits.LATEST`).

A violation is a :class:`~ordinaut.errors.ValidationError` (422) naming the field as a path
(``payload.pipeline[0].with.text``); a body that is not JSON at all is a
:class:`~ordinaut.errors.MalformedRequest` (400). Who calls what: the API parses every JSON
body with :func:`parse_json` and checks path and query strings with :func:`check_text`; the
MCP server runs :func:`check_json` on tool arguments; the service runs :func:`check_instant`
on every date it reads.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ordinaut.errors import MalformedRequest, ValidationError
from ordinaut.jsonsafe import TOO_DEEP, Refused, check_json, check_string
from ordinaut.limits import EARLIEST, LATEST

__all__ = [
    "check_http_url",
    "check_instant",
    "check_json",
    "check_text",
    "parse_json",
]

MAX_INT_DIGITS = 4300


def _constant(name: str) -> Refused:
    return Refused(f"{name} is not a JSON number")


def _float(text: str) -> float | Refused:
    value = float(text)
    return value if math.isfinite(value) else Refused(f"{text[:40]} is too large for a number")


def _int(text: str) -> int | Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def parse_json(raw: bytes) -> Any:
    """The JSON value in ``raw`` (UTF-8), checked by :func:`check_json`.

    Raises MalformedRequest when ``raw`` is not UTF-8 JSON, ValidationError naming the field
    when it is JSON that Ordinaut refuses.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"malformed JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ValidationError(TOO_DEEP, field="body") from None
    check_json(value)
    return value


def check_text(value: str, field: str) -> None:
    """Refuse NUL and lone surrogates in one string (a path or query parameter, a header)."""
    check_string(value, field)


def check_instant(moment: datetime, field: str) -> None:
    """Refuse an instant outside [EARLIEST, LATEST) (years 1970 to 8999, UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=EARLIEST.tzinfo)
    if not EARLIEST <= aware < LATEST:
        raise ValidationError(
            f"{moment.isoformat()} is outside the supported range "
            f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)",
            field=field,
        )


def check_http_url(url: str, field: str) -> str:
    """Refuse a URL that is not plain ``http(s)://host[:port]/…``: no other scheme, no
    ``user:password@``, no whitespace or control characters (a CR/LF would split a header)."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValidationError(
            "must not contain spaces or control characters (CR, LF, tab…)", field=field
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an http:// or https:// URL with a host", field=field)
    if "@" in parts.netloc:
        raise ValidationError(
            "must not carry credentials (user:password@); use a tool's auth secret",
            field=field,
        )
    try:
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationError(str(exc), field=field) from None
    if not host:
        raise ValidationError("must be an http:// or https:// URL with a host", field=field)
    return url
