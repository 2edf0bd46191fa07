"""Engines and connections. Built from Settings on demand; nothing connects at import time.

Stale connections: a pooled connection that sat idle for :data:`PING_AFTER_IDLE` seconds is
pinged when it is checked out again (and replaced if the server went away meanwhile); one in
steady use is not. SQLAlchemy's ``pool_pre_ping`` pings on *every* checkout, a round trip
per run on the hot path for a failure that, after a database restart, shows up once per
connection anyway: a statement on a connection the server dropped fails, the pool discards
it, and the caller's retry (beat's next tick, the next dispatch, a run's claim: see
:func:`ordinaut.runs.execute.execute_run`) gets a fresh one. Connections are also recycled
after an hour.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ordinaut.errors import ConfigError

PING_AFTER_IDLE = 10.0  # seconds a pooled connection may idle before it is pinged at checkout
RECYCLE_SECONDS = 3600


def make_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    application_name: str = "ordinaut",
    silent: bool = False,
) -> Engine:
    """An engine for ``database_url`` (already normalised by Settings).

    ``silent``: its writes to tasks and due work send no change notice (beat's: it knows).
    """
    connect_args: dict[str, Any] = {"application_name": application_name, "connect_timeout": 5}
    if silent:
        connect_args["options"] = "-c ordinaut.silent=on"
    engine = sa.create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=RECYCLE_SECONDS,
        connect_args=connect_args,
    )
    event.listen(engine.pool, "checkin", _note_checkin)
    event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


def _note_checkin(dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    """Ping a connection that idled a while; the pool replaces it when the ping fails."""
    idle_since = record.info.get("checked_in")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
        return
    try:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        if not dbapi_conn.autocommit:
            dbapi_conn.rollback()
    except Exception as exc:
        raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc


def check_database(engine: Engine) -> None:
    """Fail with a clear ConfigError when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"DATABASE_URL: cannot connect to PostgreSQL ({reason}); check that the server "
            "runs and the URL is right, or unset DATABASE_URL and let `ordinaut up` start "
            "an embedded one",
            field="DATABASE_URL",
        ) from None
