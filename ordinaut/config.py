"""Settings: one object, read from the environment at start-up and passed down.

Nothing here connects to anything. ``load_settings()`` turns every problem into a
``ConfigError`` whose one-line message names the variable and says what to do.

Variables: ``DATABASE_URL``, ``REDIS_URL`` and ``ORDINAUT_*`` (see ``Settings``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ordinaut import egress, limits
from ordinaut.errors import ConfigError

_PG_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    """Every knob Ordinaut reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="ORDINAUT_", extra="ignore", frozen=True)

    database_url: str = Field(validation_alias="DATABASE_URL")
    redis_url: str = Field(validation_alias="REDIS_URL")
    # namespace for Redis keys and Celery queues, so several deployments (or tests) share a server
    namespace: str = Field(default="ordinaut", pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    default_timezone: str = "Europe/Chisinau"
    admin_token: str | None = None
    # scheduling
    beat_max_interval: float = Field(default=1.0, gt=0, le=60)
    beat_batch_size: int = Field(default=1000, ge=1, le=100_000)
    misfire_grace_seconds: int = Field(default=60, ge=0)
    misfire_cap: int = Field(default=100, ge=1, le=10_000)
    # the agenda reads the caller's tasks this many rows a query, only as far as a page needs
    agenda_chunk: int = Field(default=1000, ge=1, le=100_000)
    # execution
    lease_seconds: int = Field(default=60, ge=5, le=86_400)
    dispatch_batch_size: int = Field(default=500, ge=1, le=10_000)
    # fair sharing: dispatch keeps at most this many runs queued in the common runs queue
    # (0 = no bound), so work leased later waits behind a bounded queue, not a whole burst
    dispatch_queue_window: int = Field(default=1024, ge=0, le=1_000_000)
    # shared rate limits on tool calls (ordinaut.policy.rate_limits), a JSON list
    rate_limits: str = ""
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_cap_seconds: float = Field(default=600.0, gt=0)
    # a worker told to stop lets runs go on this long, then hands them back (runs/shutdown.py)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=3600)
    # limits
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=1200, ge=0)  # per agent, API and MCP; 0 = off
    # egress (ordinaut.egress): where tools may connect; the API's address is guarded too
    egress_allow: str = ""
    egress_deny: str = ""
    api_address: str = "127.0.0.1:8080"
    # byte caps on a run's data, as compact UTF-8 JSON (README, "Limits"); a step's data up to
    # the largest step cap is always small enough for GET /runs/{id}/steps/{path}/{part}
    max_step_input_bytes: int = Field(
        default=limits.DEFAULT_MAX_STEP_INPUT_BYTES, ge=1024, le=limits.MAX_STEP_CAP
    )
    max_step_output_bytes: int = Field(
        default=limits.DEFAULT_MAX_STEP_OUTPUT_BYTES, ge=1024, le=limits.MAX_STEP_CAP
    )
    max_run_receipt_bytes: int = Field(
        default=limits.DEFAULT_MAX_RUN_RECEIPT_BYTES, ge=1024, le=256 * limits.MIB
    )
    max_event_payload_bytes: int = Field(
        default=limits.DEFAULT_MAX_EVENT_PAYLOAD_BYTES, ge=1024, le=16 * limits.MIB
    )
    # authentication: lookups remembered this long (found or not); failed attempts allowed per
    # client address per minute before 429 (0 = off)
    auth_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    auth_failures_per_minute: int = Field(default=60, ge=0)
    # events: GET /events/stream sends a comment this often when nothing happens
    event_stream_heartbeat_seconds: float = Field(default=15.0, ge=0.1, le=300)
    # open GET /events/stream connections per API process (each waits in its own thread)
    max_event_streams: int = Field(default=32, ge=1, le=1000)
    # webhooks (ordinaut.events.webhooks): loopback, private and link-local receivers are
    # refused unless allowed here (checked on the resolved address at delivery)
    allow_private_webhooks: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    # the fire ledger, condition checks and finished webhook deliveries are kept this long
    event_history_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("has no host (expected redis://HOST:PORT/DB)")
        _check_port(parts)
        return value

    @field_validator("egress_allow", "egress_deny")
    @classmethod
    def _check_egress(cls, value: str) -> str:
        egress.parse_entries(value, "")
        return value

    @field_validator("api_address")
    @classmethod
    def _check_api_address(cls, value: str) -> str:
        api_host_port(value)
        return value

    @property
    def control_queue(self) -> str:
        """Celery queue for dispatch and the maintenance tasks."""
        return f"{self.namespace}.control"

    @property
    def runs_queue(self) -> str:
        """Celery queue for ``execute_run``."""
        return f"{self.namespace}.runs"


def normalise_database_url(value: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` and return the psycopg 3 SQLAlchemy form."""
    parts = urlsplit(value)
    if parts.scheme not in _PG_SCHEMES:
        raise ValueError(
            "must start with postgresql:// (e.g. postgresql://user@127.0.0.1:5432/ordinaut)"
        )
    if not parts.path.strip("/"):
        raise ValueError("names no database (expected postgresql://USER@HOST:PORT/DATABASE)")
    _check_port(parts)
    return "postgresql+psycopg://" + value.split("://", 1)[1]


def api_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) as a pair; ValueError when it is not one."""
    parts = urlsplit(f"http://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.netloc != address or "@" in address:
        raise ValueError("must be HOST:PORT where the API listens (e.g. 127.0.0.1:8080)")
    return parts.hostname, port


def _check_port(parts: Any) -> None:
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"has an invalid port ({exc})") from None


_ENV_NAMES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (plus overrides), or raise one clear ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        env = _ENV_NAMES.get(name, name if name.isupper() else f"ORDINAUT_{name.upper()}")
        if err["type"] == "missing":
            raise ConfigError(
                f"{env} is not set: export it, or run `ordinaut up`, which starts embedded servers",
                field=env,
            ) from None
        reason = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{env} {reason}", field=env) from None
