"""Documented limits on what Ordinaut accepts: one place, so every reader checks the same.

Guarantee 10 of the design: nothing an agent sends can make a process grow without bound.
The byte caps on step data are settings (``ORDINAUT_MAX_*``, :mod:`ordinaut.config`); the
limits here are fixed by what the store and the recurrence engine can represent.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Every instant Ordinaut reads or computes lies in [EARLIEST, LATEST): far enough from
# datetime's ends (years 1 and 9999) that a zone offset or a jitter cannot overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

# JSON nested deeper than this (objects and arrays) is refused at the edge: PostgreSQL's
# jsonb and Python's recursion both have limits, and no real payload comes near it.
MAX_JSON_DEPTH = 64
