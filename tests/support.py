"""Helpers for tests that start real Ordinaut processes (beat, workers, API)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import redis
from mcp.types import TextContent, TextResourceContents

from ordinaut.config import Settings

T = TypeVar("T")


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a child process that should use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        ORDINAUT_NAMESPACE=settings.namespace,
        ORDINAUT_LEASE_SECONDS=str(settings.lease_seconds),
        ORDINAUT_BACKOFF_BASE_SECONDS=str(settings.backoff_base_seconds),
        ORDINAUT_BACKOFF_CAP_SECONDS=str(settings.backoff_cap_seconds),
        ORDINAUT_MISFIRE_GRACE_SECONDS=str(settings.misfire_grace_seconds),
        ORDINAUT_SHUTDOWN_GRACE_SECONDS=str(settings.shutdown_grace_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.admin_token:
        env["ORDINAUT_ADMIN_TOKEN"] = settings.admin_token
    env.update(extra)
    return env


class Proc:
    """A child process with its output in a log file; stopped for sure at teardown."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, process_group=0
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """SIGKILL the whole process group (a crash, as far as Ordinaut can tell)."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        # reap any leftover pool children of the group
        self.signal(signal.SIGKILL)
        self._log.close()


def celery(settings: Settings, log_dir: Path, name: str, *args: str, **env: str) -> Proc:
    argv = [sys.executable, "-m", "celery", "-A", "ordinaut", *args]
    return Proc(name, argv, settings_env(settings, **env), log_dir)


def start_beat(settings: Settings, log_dir: Path, name: str = "beat") -> Proc:
    return celery(settings, log_dir, name, "beat", "--loglevel", "INFO", "--pidfile=")


def start_worker(
    settings: Settings,
    log_dir: Path,
    name: str = "worker",
    *,
    queues: str = "runs,control",
    concurrency: int = 2,
    pool: str = "prefork",
    env: Mapping[str, str] | None = None,
) -> Proc:
    qs = ",".join(f"{settings.namespace}.{q}" for q in queues.split(","))
    return celery(
        settings,
        log_dir,
        name,
        "worker",
        "-Q",
        qs,
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-n",
        f"{name}-{settings.namespace}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        **(env or {}),
    )


def start_api(
    settings: Settings, log_dir: Path, port: int, env: Mapping[str, str] | None = None
) -> Proc:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "ordinaut.api.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = Proc("api", argv, settings_env(settings, **(env or {})), log_dir)
    wait_for(lambda: _get(f"http://127.0.0.1:{port}/openapi.json") is not None, 30, proc=proc)
    return proc


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return None


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.1,
    proc: Proc | None = None,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy; fail with context after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited early:\n{proc.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """Collects Procs and stops them all, whatever happens."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for p in reversed(procs):
            p.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bootstrap_admin(settings: Settings) -> str:
    """Create the admin agent in the settings' database and return its token."""
    from ordinaut.service.agents import ensure_admin
    from ordinaut.store.engine import make_engine

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            created = ensure_admin(conn, None)
    finally:
        engine.dispose()
    assert created is not None
    return created.token


def text_of(block: object) -> str:
    """The text of an MCP content block (a tool result's, a prompt's or a resource's)."""
    assert isinstance(block, TextContent | TextResourceContents), block
    return block.text


def stream_fields(client: redis.Redis, key: str) -> list[dict[str, str]]:
    """The fields of each entry of the Redis stream ``key``, oldest first."""
    entries = client.xrange(key)
    assert isinstance(entries, list), entries  # a sync client answers with a list
    return [{str(k): str(v) for k, v in (fields or {}).items()} for _, fields in entries]


@contextlib.contextmanager
def server_dir(name: str) -> Iterator[Path]:
    """A temporary folder for an embedded PostgreSQL's data, outside pytest's own.

    Run as root, embedded PostgreSQL runs as the postgres user and opens the way to its data
    (o+x on the parents); every new pytest session closes /tmp/pytest-of-USER again (0700), which
    would cut a running server off from its files while another session starts.
    """
    path = Path(tempfile.mkdtemp(prefix=f"ordinaut-test-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
