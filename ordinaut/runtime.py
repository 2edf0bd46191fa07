"""Per-process resources (engine, Redis client) built from Settings on first use.

Celery's prefork pool forks after the parent may have touched these, so a Runtime notices a
changed pid and rebuilds its connections instead of sharing sockets across processes.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.store.engine import make_engine


@dataclass
class Runtime:
    """Connections for one process, from one Settings object."""

    settings: Settings
    role: str = "ordinaut"
    pid: int = field(default_factory=os.getpid)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, application_name=f"ordinaut-{self.role}")

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, protocol=3, decode_responses=True)

    @cached_property
    def celery(self) -> Any:
        """A Celery app for sending messages (built on first use)."""
        from ordinaut.celery_app import create_app

        return create_app(self.settings)

    def kick_dispatch(self) -> None:
        """Ask a worker to dispatch now (best effort: the periodic dispatch is the backstop).

        Coalesced with every other request through the same Redis flag, so a burst of
        ``run_now`` calls sends one dispatch message, not one each.
        """
        from ordinaut.runs.celery_tasks import request_dispatch

        try:
            request_dispatch(self.celery, self)
        except Exception:
            logging.getLogger("ordinaut").warning("could not send dispatch", exc_info=True)

    @property
    def identity(self) -> str:
        """Who holds a lease: host and pid."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def key(self, *parts: str) -> str:
        """A Redis key inside this deployment's namespace."""
        return ":".join((self.settings.namespace, *parts))

    def close(self) -> None:
        """Release pooled connections (safe to call twice)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]
        if "redis" in self.__dict__:
            self.redis.close()
            del self.__dict__["redis"]
        if "celery" in self.__dict__:
            self.celery.close()
            del self.__dict__["celery"]

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process."""
        if self.pid != os.getpid():
            if "engine" in self.__dict__:
                self.engine.dispose(close=False)
                del self.__dict__["engine"]
            self.__dict__.pop("redis", None)
            self.pid = os.getpid()
