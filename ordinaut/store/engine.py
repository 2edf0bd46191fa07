"""Engines and connections. Built from Settings on demand; nothing connects at import time."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.errors import ConfigError


def make_engine(
    database_url: str, *, pool_size: int = 5, application_name: str = "ordinaut"
) -> Engine:
    """An engine for ``database_url`` (already normalised by Settings)."""
    return sa.create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        connect_args={"application_name": application_name, "connect_timeout": 5},
    )


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
