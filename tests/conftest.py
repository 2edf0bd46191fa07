"""Test tiers, and real PostgreSQL and Redis (from the environment, or embedded) per test.

Tiers follow the directory (markers are added at collection): ``tests/unit`` is ``unit`` (pure:
no server, runs in seconds), ``tests/integration`` is ``integration`` (PostgreSQL and Redis),
``tests/acceptance`` is ``acceptance`` and ``integration`` (real Ordinaut processes too), and
``tests/test_static.py`` is ``static`` (ruff, mypy). A test outside the integration tiers that
asks for the servers stops the collection, so ``-m "not integration"`` never needs a server.

Servers: ``TEST_DATABASE_URL``/``DATABASE_URL`` and ``TEST_REDIS_URL``/``REDIS_URL`` when set;
otherwise embedded servers started once per session in a temporary folder. Isolation: a
migrated template database is made once per session and cloned for each test that asks for
``settings``; each test gets its own Redis key namespace (queues included), deleted after.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import Engine, make_url

from ordinaut.config import Settings, load_settings
from ordinaut.store import migrate
from ordinaut.store.engine import make_engine
from tests.support import server_dir

TESTS = Path(__file__).resolve().parent
TIERS: dict[str, tuple[str, ...]] = {
    "unit": ("unit",),
    "integration": ("integration",),
    "acceptance": ("acceptance", "integration"),
}


def _markers_for(path: Path) -> tuple[str, ...]:
    if not path.is_relative_to(TESTS):
        return ()
    folder = path.relative_to(TESTS).parts[0]
    if folder in TIERS:
        return TIERS[folder]
    if path == TESTS / "test_static.py":
        return ("static",)
    raise pytest.UsageError(f"{path}: put tests in tests/unit, integration or acceptance")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier, from the folder it lives in."""
    for item in items:
        markers = _markers_for(item.path)
        for name in markers:
            item.add_marker(name)
        # every fixture that reaches PostgreSQL or Redis depends on `servers`
        if "servers" in getattr(item, "fixturenames", ()) and "integration" not in markers:
            raise pytest.UsageError(
                f"{item.nodeid} needs PostgreSQL/Redis: move it to tests/integration"
            )


def _env(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    """(postgres admin URL, redis URL) of the servers tests use."""
    db_url = _env("TEST_DATABASE_URL", "DATABASE_URL")
    redis_url = _env("TEST_REDIS_URL", "REDIS_URL")
    with contextlib.ExitStack() as started:  # stops what it started, in reverse order
        if db_url is None or redis_url is None:
            from ordinaut.embedded import EmbeddedPostgres, EmbeddedRedis

            data = started.enter_context(server_dir("servers"))
            if db_url is None:
                db_url = started.enter_context(EmbeddedPostgres(data, database="postgres")).url
            if redis_url is None:
                redis_url = started.enter_context(EmbeddedRedis(data)).url
        yield db_url, redis_url


def _admin_conninfo(db_url: str) -> str:
    url = make_url(db_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def _db_url(db_url: str, name: str) -> str:
    url = make_url(db_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_db(servers: tuple[str, str]) -> Iterator[str]:
    """Name of a migrated database to clone per test."""
    db_url, _ = servers
    name = f"ordinaut_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_db_url(db_url, name), pool_size=1)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield name
    finally:
        with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(servers: tuple[str, str]) -> Iterator[str]:
    """URL of a new, empty database (dropped after the test)."""
    db_url, _ = servers
    name = f"ordinaut_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _db_url(db_url, name)
    finally:
        with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(servers: tuple[str, str], template_db: str) -> Iterator[Settings]:
    """Settings pointing at a fresh clone of the migrated template and a private namespace."""
    db_url, redis_url = servers
    name = f"ordinaut_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    namespace = f"t{uuid.uuid4().hex[:12]}"
    built = load_settings(
        DATABASE_URL=_db_url(db_url, name),
        REDIS_URL=redis_url,
        namespace=namespace,
        lease_seconds=10,
        backoff_base_seconds=1.0,
        backoff_cap_seconds=30.0,
    )
    try:
        yield built
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        with psycopg.connect(_admin_conninfo(db_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    built = make_engine(settings.database_url, pool_size=2, application_name="ordinaut-test")
    yield built
    built.dispose()


@pytest.fixture
def server_tmp_path() -> Iterator[Path]:
    """As ``tmp_path``, for an embedded PostgreSQL's data (see ``tests.support.server_dir``)."""
    with server_dir("test") as path:
        yield path


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path
