"""Stable jitter: spread a herd of same-time tasks without making any one of them random.

The delay for a (task, occurrence) pair is derived from SHA-256 of the task id and the
occurrence instant (in UTC), so every beat process, restart and retry computes the same
value. It lies in ``[0, jitter_seconds]`` with millisecond resolution.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

__all__ = ["jitter_delay", "stable_fraction", "stable_int"]


def stable_int(seed: str) -> int:
    """A 64-bit number that depends only on ``seed``: the same on every host and run."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")


def stable_fraction(seed: str) -> float:
    """A number in ``[0, 1)`` that depends only on ``seed`` (see :func:`stable_int`)."""
    return stable_int(seed) / 2**64


def jitter_delay(task_id: str, occurrence: datetime, jitter_seconds: int) -> timedelta:
    """The stable delay in ``[0, jitter_seconds]`` for this task and occurrence."""
    if jitter_seconds < 0:
        raise ValueError(f"jitter_seconds must not be negative, got {jitter_seconds}")
    if occurrence.tzinfo is None:
        raise ValueError("occurrence must be an aware datetime")
    if jitter_seconds == 0:
        return timedelta(0)
    instant = occurrence.astimezone(UTC).isoformat()
    millis = stable_int(f"{task_id}\x00{instant}") % (jitter_seconds * 1000 + 1)
    return timedelta(milliseconds=millis)
