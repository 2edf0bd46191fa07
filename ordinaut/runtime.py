"""Per-process resources (engine, Redis client) built from Settings, and the Redis key names.

Celery's prefork pool forks after the parent may have touched these, so a Runtime notices a
changed pid and rebuilds its connections instead of sharing sockets across processes; a
worker builds them once per pool process, in ``worker_process_init`` (:mod:`ordinaut.tasks`).

A Celery app built by :func:`ordinaut.celery.create_app` carries its Runtime;
:func:`runtime_of` finds it (this module imports no Celery, so anything may use it).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import redis
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.store.engine import make_engine

# Redis keys: heartbeats say who is alive; /health and the supervisor read them
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = int(HEARTBEAT_SECONDS * 3)


def heartbeat_value(at: datetime, queues: Sequence[str]) -> str:
    """What a worker's heartbeat key holds: when, and the queues it consumes."""
    return json.dumps({"at": at.isoformat(), "queues": list(queues)})


def heartbeat_queues(value: str | bytes | None) -> list[str]:
    """The queues named by a worker's heartbeat value (none for an unreadable one)."""
    try:
        queues = json.loads(value or b"")["queues"]
    except (ValueError, TypeError, KeyError):
        return []
    return [q for q in queues if isinstance(q, str)] if isinstance(queues, list) else []


@dataclass
class Runtime:
    """Connections for one process, from one Settings object."""

    settings: Settings
    role: str = "ordinaut"
    pid: int = field(default_factory=os.getpid)
    silent: bool = False  # writes send no change notice (beat's; see ordinaut.store.notices)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(
            self.settings.database_url,
            application_name=f"ordinaut-{self.role}",
            silent=self.silent,
        )

    def become_silent(self) -> None:
        """From now on this process's writes send no change notice (its engine is rebuilt)."""
        if not self.silent:
            self.silent = True
            if "engine" in self.__dict__:
                self.engine.dispose()
                del self.__dict__["engine"]

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, protocol=3, decode_responses=True)

    @property
    def identity(self) -> str:
        """Who holds a lease: host and pid."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def key(self, *parts: str) -> str:
        """A Redis key inside this deployment's namespace."""
        return ":".join((self.settings.namespace, *parts))

    def heartbeat_key(self, role: str, name: str = "") -> str:
        """Where ``role`` (``beat``, or ``worker`` with its host name) says it is alive."""
        return self.key("heartbeat", role, name) if name else self.key("heartbeat", role)

    def close(self) -> None:
        """Release pooled connections (safe to call twice)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]
        if "redis" in self.__dict__:
            self.redis.close()
            del self.__dict__["redis"]

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process."""
        if self.pid != os.getpid():
            if "engine" in self.__dict__:
                self.engine.dispose(close=False)
                del self.__dict__["engine"]
            self.__dict__.pop("redis", None)
            self.pid = os.getpid()


def bind(app: Any, factory: Callable[[], Runtime]) -> None:
    """Attach to a Celery ``app`` the Runtime that ``factory`` builds on first use."""
    holder: list[Runtime] = []

    def runtime() -> Runtime:
        if not holder:
            holder.append(factory())
        return holder[0]

    app.ordinaut_runtime = runtime


def runtime_of(app: Any) -> Runtime:
    """The Runtime bound to a Celery app built by ``create_app``; fresh in a forked child."""
    rt: Runtime = app.ordinaut_runtime()
    rt.after_fork()
    return rt
