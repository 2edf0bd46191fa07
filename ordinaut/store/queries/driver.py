"""The hottest statements through the driver's own cursor, on SQLAlchemy's connection.

A run's claim and finish and beat's reads and writes run for every run; SQLAlchemy's result
handling of a textual statement (the cursor's column descriptions read and matched anew on
every execution) cost more client CPU than the driver's whole round trip: 0.35 of 1.0 ms a
run in the worker's claim, measured with cProfile over 1,450 runs. Here the same compiled
SQL (compiled once per statement, for this dialect) runs on the same pooled connection —
same transaction, same pool events — and rows come back as named tuples whose field names
are read once per statement.

Errors are SQLAlchemy's: a driver error is wrapped in the :class:`sqlalchemy.exc.DBAPIError`
SQLAlchemy would raise, and a lost connection is invalidated in the pool first
(``connection_invalidated``), so callers handle both paths alike.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import tuple_row
from sqlalchemy.engine import Connection

_SQL: dict[sa.TextClause, str] = {}
_ROWS: dict[sa.TextClause, Any] = {}


def _sql(conn: Connection, statement: sa.TextClause) -> str:
    sql = _SQL.get(statement)
    if sql is None:
        compiled = statement.compile(dialect=conn.dialect)
        if compiled._bind_processors:  # typed parameters need SQLAlchemy's processing
            raise TypeError("driver statements take plain parameters only")
        sql = _SQL[statement] = str(compiled)
    return sql


def _row_type(statement: sa.TextClause, cursor: psycopg.Cursor[Any]) -> Any:
    made = _ROWS.get(statement)
    if made is None:
        names = [column.name for column in cursor.description or ()]
        made = _ROWS[statement] = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
    return made


def _execute(
    conn: Connection, statement: sa.TextClause, params: Mapping[str, Any], fetch: str
) -> Any:
    sql = _sql(conn, statement)
    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        with raw.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, params)
            answer = cursor.pgresult
            if answer is None or not answer.nfields:  # a statement without rows
                return None if fetch == "one" else []
            row_type = _row_type(statement, cursor)
            if fetch == "one":
                first = cursor.fetchone()
                return None if first is None else row_type._make(first)
            return [row_type._make(row) for row in cursor.fetchall()]
    except psycopg.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)  # type: ignore[arg-type]
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            sql, dict(params), exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc


def first(conn: Connection, statement: sa.TextClause, params: Mapping[str, Any]) -> Any:
    """The first row of ``statement`` (a named tuple), or None."""
    return _execute(conn, statement, params, "one")


def rows(conn: Connection, statement: sa.TextClause, params: Mapping[str, Any]) -> list[Any]:
    """Every row of ``statement``, as named tuples."""
    result: list[Any] = _execute(conn, statement, params, "all")
    return result
