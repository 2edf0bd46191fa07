"""How big a value is as JSON, found without building the JSON (and without going past a cap).

Every byte cap on data (step inputs and outputs, a run's receipts, event payloads; see
:mod:`ordinaut.limits` and the ``ORDINAUT_MAX_*`` settings) measures the same thing: the
length in bytes of the value as compact UTF-8 JSON (``separators=(",", ":")``, non-ASCII
as is). :func:`json_size` walks the value without recursion and stops as soon as the count
passes ``limit``, so asking whether a 500 MB structure fits under 1 MiB costs about 1 MiB of
work. Shared references count once per place they appear, as they would when serialised:
``{"a": x, "b": x}`` is twice as big as ``x``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# digits of an int, estimated from its bit length past this size (str() of a huge int is
# quadratic, and Python refuses past 4,300 digits)
_EXACT_INT_BITS = 64
_LOG10_2 = math.log10(2)

_encode_string = json.encoder.encode_basestring  # the C encoder json.dumps uses (no ASCII escaping)


def string_size(text: str) -> int:
    """Bytes of ``text`` as a JSON string, quotes and escapes included."""
    return len(_encode_string(text).encode("utf-8", "surrogatepass"))


def _scalar_size(value: Any) -> int:
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, int):
        if value.bit_length() <= _EXACT_INT_BITS:
            return len(str(value))
        return int(value.bit_length() * _LOG10_2) + 1 + (value < 0)
    if isinstance(value, float):
        return len(json.dumps(value))
    # what ordinaut.store.queries.jsonb.dumps writes for anything else: its str() as a string
    return string_size(str(value))


def json_size(value: Any, limit: int | None = None) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON; once past ``limit``, a number over ``limit``.

    The walk stops at the first piece that takes the count past ``limit``, and a string
    longer (in characters) than what is left is never encoded, so the work done is bounded
    by ``limit``, not by ``value``.
    """
    cap = math.inf if limit is None else limit
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) + 2 > cap - total:  # at least a byte per character, plus quotes
                return total + len(item) + 2
            total += string_size(item)
        elif isinstance(item, Mapping):
            total += 2 + max(len(item) - 1, 0) + len(item)  # braces, commas, colons
            if total > cap:  # checked before the children are even looked at
                return total
            for key, child in item.items():
                stack.append(child)
                stack.append(key if isinstance(key, str) else _key_text(key))
        elif isinstance(item, (list, tuple)):
            total += 2 + max(len(item) - 1, 0)  # brackets and commas
            if total > cap:
                return total
            stack.extend(item)
        else:
            total += _scalar_size(item)
        if total > cap:
            return total
    return total


def _key_text(key: Any) -> str:
    """A non-string key as json.dumps writes it (``1`` → ``"1"``, ``True`` → ``"true"``)."""
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    return str(key) if not isinstance(key, float) else json.dumps(key)


def fits(value: Any, limit: int) -> bool:
    """True when ``value`` is at most ``limit`` bytes as compact UTF-8 JSON."""
    return json_size(value, limit) <= limit
