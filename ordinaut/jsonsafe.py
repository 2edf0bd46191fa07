"""JSON values PostgreSQL and Python can hold: no NUL, no lone surrogate, no NaN or Infinity,
no nesting deeper than :data:`~ordinaut.limits.MAX_JSON_DEPTH`.

PostgreSQL refuses U+0000 in ``text`` and ``jsonb``, a lone surrogate (U+D800..U+DFFF) cannot
be encoded as UTF-8, JSON has no NaN or Infinity, and deep nesting exhausts recursion. The
same walk guards what comes in (the input boundary, :mod:`ordinaut.service.inputs`) and what
a tool sends back before it is stored (a step's output, :mod:`ordinaut.runs.execute`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ordinaut.errors import ValidationError
from ordinaut.limits import MAX_JSON_DEPTH

FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays"


@dataclass(frozen=True)
class Refused:
    """A value a parser met but must not hand on (e.g. ``NaN``); the walk names its field."""

    reason: str


def check_json(value: Any, field: str = "") -> None:
    """Refuse NUL, lone surrogates, non-finite numbers and deep nesting anywhere in ``value``.

    ``value`` is parsed JSON (dicts, lists, strings, numbers, booleans, None); ``field`` is
    the path of ``value`` itself ("" for a whole body). Iterative, so depth costs no stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            check_string(node, path or "body")
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                where = path or "body"
                raise ValidationError(TOO_DEEP, field=where)
            if isinstance(node, dict):
                for key, item in node.items():
                    inner = _join(path, key)
                    if isinstance(key, str) and FORBIDDEN.search(key):
                        check_string(key, inner, what="the key")
                    stack.append((item, inner, depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
        elif isinstance(node, Refused):
            where = path or "body"
            raise ValidationError(node.reason, field=where)
        elif isinstance(node, float) and not math.isfinite(node):
            where = path or "body"
            name = "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
            raise ValidationError(f"{name} is not a JSON number", field=where)


def check_string(text: str, field: str, *, what: str = "the text") -> None:
    """Refuse NUL and lone surrogates in one string, naming ``field``."""
    found = FORBIDDEN.search(text)
    if found is None:
        return
    char = found.group()
    if char == "\x00":
        reason = f"{what} contains a NUL character (\\u0000), which cannot be stored"
    else:
        reason = f"{what} contains a lone surrogate (\\u{ord(char):04x}), which is not Unicode"
    raise ValidationError(reason, field=field)


def _join(path: str, key: Any) -> str:
    label = FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", str(key))[:80]
    return f"{path}.{label}" if path else label
