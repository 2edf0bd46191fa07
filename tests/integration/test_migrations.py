"""The Alembic revisions produce exactly the tables the code declares, and run both ways."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ordinaut.store import migrate
from ordinaut.store.engine import make_engine
from ordinaut.store.tables import metadata


def test_head_matches_tables(fresh_db: str) -> None:
    engine = make_engine(fresh_db, pool_size=1)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"schema drift between revisions and tables: {diff}"
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(fresh_db: str) -> None:
    engine = make_engine(fresh_db, pool_size=1)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
            types = conn.execute(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'")).all()
        assert tables == set()
        assert types == []
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(fresh_db: str) -> None:
    engine = make_engine(fresh_db, pool_size=1)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        engine.dispose()
