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

# Byte caps on the data of a run, measured as compact UTF-8 JSON (ordinaut.jsonsize): the
# defaults of the ORDINAUT_MAX_* settings (ordinaut.config).
MIB = 1024 * 1024
DEFAULT_MAX_STEP_INPUT_BYTES = MIB
DEFAULT_MAX_STEP_OUTPUT_BYTES = MIB
DEFAULT_MAX_RUN_RECEIPT_BYTES = 8 * MIB
DEFAULT_MAX_EVENT_PAYLOAD_BYTES = 64 * 1024
# the largest a step cap may be set to: PostgreSQL's JSON text of such a value (", " and
# ": " where compact JSON has "," and ":") stays under MAX_SERVED_STEP_DATA_BYTES
MAX_STEP_CAP = 8 * MIB

# Run errors and step errors are kept to this many characters (a tool may answer with a
# long message); the rest is cut with a note of how much was left out.
MAX_ERROR_CHARS = 4096

# GET /runs/{id} shows a step's input or output (and the run's output) inline up to this
# many bytes of JSON text; a larger one is {"truncated": true, "bytes": N, "preview": …}
# with the first PREVIEW_CHARS characters, and GET /runs/{id}/steps/{path}/{part} gives the
# whole (up to MAX_SERVED_STEP_DATA_BYTES, so rows from before the caps cannot swamp the API).
INLINE_STEP_DATA_BYTES = 64 * 1024
PREVIEW_CHARS = 1024
MAX_SERVED_STEP_DATA_BYTES = 16 * MIB
