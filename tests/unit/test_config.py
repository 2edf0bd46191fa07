"""Settings come from the environment; every bad value is one clear line naming the variable."""

from __future__ import annotations

import pytest

from ordinaut.config import load_settings
from ordinaut.errors import ConfigError

GOOD_DB = "postgresql://postgres@127.0.0.1:5432/ordinaut"
GOOD_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ORDINAUT_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)


def test_valid_urls_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5433/x")
    monkeypatch.setenv("REDIS_URL", GOOD_REDIS)
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u:p@db:5433/x"
    assert settings.redis_url == GOOD_REDIS
    assert settings.namespace == "ordinaut"


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"REDIS_URL": GOOD_REDIS}, "DATABASE_URL", "is not set"),
        ({"DATABASE_URL": GOOD_DB}, "REDIS_URL", "is not set"),
        ({"DATABASE_URL": "mysql://x/y", "REDIS_URL": GOOD_REDIS}, "DATABASE_URL", "postgresql://"),
        (
            {"DATABASE_URL": "postgresql://h:5432", "REDIS_URL": GOOD_REDIS},
            "DATABASE_URL",
            "no database",
        ),
        (
            {"DATABASE_URL": "postgresql://h:99999/x", "REDIS_URL": GOOD_REDIS},
            "DATABASE_URL",
            "port",
        ),
        ({"DATABASE_URL": GOOD_DB, "REDIS_URL": "http://x"}, "REDIS_URL", "redis://"),
        ({"DATABASE_URL": GOOD_DB, "REDIS_URL": "redis://"}, "REDIS_URL", "no host"),
        (
            {"DATABASE_URL": GOOD_DB, "REDIS_URL": GOOD_REDIS, "ORDINAUT_LEASE_SECONDS": "soon"},
            "ORDINAUT_LEASE_SECONDS",
            "integer",
        ),
        (
            {"DATABASE_URL": GOOD_DB, "REDIS_URL": GOOD_REDIS, "ORDINAUT_NAMESPACE": "Bad Name"},
            "ORDINAUT_NAMESPACE",
            "pattern",
        ),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, fragment: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = info.value.message
    assert message.startswith(variable)
    assert fragment in message
    assert "\n" not in message
