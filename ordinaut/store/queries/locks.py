"""Transaction-scoped advisory locks on named keys (concurrency, dedupe, overlap)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_LOCK_KEYS = sa.text(
    """
    SELECT count(pg_advisory_xact_lock(k.a, k.b))
    FROM (SELECT a, b FROM unnest(CAST(:a AS int[]), CAST(:b AS int[])) AS u(a, b)
          ORDER BY a, b) AS k
    """
)


def advisory_key(space: str, key: str) -> tuple[int, int]:
    """The (int, int) advisory lock id of ``key`` in lock space ``space``."""
    return zlib.crc32(space.encode()) - 2**31, zlib.crc32(key.encode()) - 2**31


def lock_keys(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Take transaction-scoped advisory locks on (space, key) pairs, in one global order.

    Every caller locks in ascending (space hash, key hash) order, so two dispatchers that
    need overlapping sets of keys queue behind each other instead of deadlocking.
    """
    ids = sorted({advisory_key(space, key) for space, key in keys})
    if ids:
        conn.execute(_LOCK_KEYS, {"a": [i[0] for i in ids], "b": [i[1] for i in ids]})
