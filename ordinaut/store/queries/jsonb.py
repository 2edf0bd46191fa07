"""Python values as the JSON text that one ``jsonb`` parameter carries (batches, receipts),
and ``jsonb`` columns read back no bigger than a caller can take (:func:`shown`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


def dumps(value: Any) -> str:
    """JSON text of ``value``: datetimes in ISO 8601, other unknown values as ``str``."""
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def among(column: str, param: str, key: str = "id", cast: str = "uuid") -> str:
    """SQL: ``column`` is one of the ``key`` values of the JSON batch ``:param``.

    Added beside a join with ``jsonb_to_recordset(:param)``: PostgreSQL estimates a JSON
    batch at 100 rows whatever its size, and on a table of a few thousand rows the planner
    then hashes the batch and scans the whole table (0.4 ms at 3,000 runs, growing with the
    table) where an index lookup of the batch's few ids costs 0.03 ms.
    """
    batch = f"jsonb_array_elements(CAST(:{param} AS jsonb)) AS x"
    ids = f"SELECT CAST(x->>'{key}' AS {cast}) FROM {batch}"
    return f"{column} = ANY(ARRAY({ids}))"


def iso(value: datetime | None) -> str | None:
    """``value`` in ISO 8601 (None stays None), as a batch row field."""
    return None if value is None else value.isoformat()


def text_size(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Bytes of a ``jsonb`` column's JSON text, as PostgreSQL writes it (NULL for NULL)."""
    return sa.func.octet_length(sa.cast(column, sa.Text))


def shown(column: sa.ColumnElement[Any], *, inline: int, preview: int) -> sa.ColumnElement[Any]:
    """A ``jsonb`` column as is up to ``inline`` bytes of JSON text, else a marker in its place:
    ``{"truncated": true, "bytes": N, "preview": <its first preview characters>}``.

    PostgreSQL makes the marker, so a large value never reaches the caller's process.
    """
    size = text_size(column)
    marker = sa.func.jsonb_build_object(
        sa.literal_column("'truncated'"),
        sa.true(),
        sa.literal_column("'bytes'"),
        size,
        sa.literal_column("'preview'"),
        sa.func.left(sa.cast(column, sa.Text), preview),
    )
    return sa.type_coerce(sa.case((size > inline, marker), else_=column), pg.JSONB)
