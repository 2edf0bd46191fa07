"""Event topics and the patterns event tasks listen with (pure).

A topic is dot-separated segments of ``A-Z a-z 0-9 _ : -`` (``email.received``). A pattern
is a topic whose segments may also be wildcards, each a whole segment:

- ``*`` matches exactly one segment: ``calendar.*`` matches ``calendar.created`` but not
  ``calendar`` or ``calendar.event.moved``; ``*.urgent`` matches ``mail.urgent``;
- ``#`` matches zero or more segments: ``calendar.#`` matches ``calendar``,
  ``calendar.created`` and ``calendar.event.moved``; ``#`` alone matches every topic.

Anything else matches itself exactly (case-sensitive). This is the AMQP topic syntax.
"""

from __future__ import annotations

import functools
import re

from ordinaut.errors import ValidationError

MAX_TOPIC = 200
_SEGMENT = re.compile(r"[A-Za-z0-9_:-]+")


def check_pattern(text: str, *, field: str = "schedule_expr") -> str:
    """The pattern, or ValidationError naming ``field`` and what is wrong with it."""
    if not 1 <= len(text) <= MAX_TOPIC:
        raise ValidationError(f"event topic pattern must be 1..{MAX_TOPIC} characters", field=field)
    for segment in text.split("."):
        if segment in ("*", "#"):
            continue
        if not _SEGMENT.fullmatch(segment):
            raise ValidationError(
                f"event topic pattern {text[:60]!r}: segment {segment[:40]!r} must be "
                "'*' (one segment), '#' (any number of segments) or 1+ characters of "
                "A-Z a-z 0-9 _ : - (segments are separated by single dots)",
                field=field,
            )
    return text


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for segment in pattern.split("."):
        if segment == "*":
            parts.append(r"[^.]+\.")
        elif segment == "#":
            parts.append(r"(?:[^.]+\.)*")
        else:
            parts.append(re.escape(segment) + r"\.")
    # every segment is matched with its trailing dot; the topic gets one appended
    return re.compile("".join(parts))


def matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` matches ``pattern`` (see the module docstring)."""
    return _compiled(pattern).fullmatch(topic + ".") is not None
