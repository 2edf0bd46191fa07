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
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ordinaut.errors import MalformedRequest, ValidationError
from ordinaut.limits import EARLIEST, LATEST, MAX_JSON_DEPTH

MAX_INT_DIGITS = 4300
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
_TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays"


@dataclass(frozen=True)
class _Refused:
    """A number the parser saw but must not hand on; the walk names its field."""

    reason: str


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"{text[:40]} is too large for a number")


def _int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
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
        raise ValidationError(_TOO_DEEP, field="body") from None
    check_json(value)
    return value


def check_json(value: Any, field: str = "") -> None:
    """Refuse NUL, lone surrogates, non-finite numbers and deep nesting anywhere in ``value``.

    ``value`` is parsed JSON (dicts, lists, strings, numbers, booleans, None); ``field`` is
    the path of ``value`` itself ("" for a whole body). Iterative, so depth costs no stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node, path or "body")
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                where = path or "body"
                raise ValidationError(_TOO_DEEP, field=where)
            if isinstance(node, dict):
                for key, item in node.items():
                    inner = _join(path, key)
                    if isinstance(key, str) and _FORBIDDEN.search(key):
                        _check_string(key, inner, what="the key")
                    stack.append((item, inner, depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
        elif isinstance(node, _Refused):
            where = path or "body"
            raise ValidationError(node.reason, field=where)
        elif isinstance(node, float) and not math.isfinite(node):
            where = path or "body"
            name = "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
            raise ValidationError(f"{name} is not a JSON number", field=where)


def check_text(value: str, field: str) -> None:
    """Refuse NUL and lone surrogates in one string (a path or query parameter, a header)."""
    _check_string(value, field)


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


def _check_string(text: str, field: str, *, what: str = "the text") -> None:
    found = _FORBIDDEN.search(text)
    if found is None:
        return
    char = found.group()
    if char == "\x00":
        reason = f"{what} contains a NUL character (\\u0000), which cannot be stored"
    else:
        reason = f"{what} contains a lone surrogate (\\u{ord(char):04x}), which is not Unicode"
    raise ValidationError(reason, field=field)


def _join(path: str, key: Any) -> str:
    label = _FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", str(key))[:80]
    return f"{path}.{label}" if path else label
