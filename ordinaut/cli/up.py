"""``ordinaut up``: the whole system on one machine, with one command.

Starts (or uses) PostgreSQL and Redis, applies migrations, makes sure an admin agent
exists, then runs the API, Celery beat, a control worker, a runs worker (and Flower on
request) as supervised children with one combined log: readable lines on the terminal,
everything (Celery's banners and root-user warning too, marked DEBUG) in
``<data dir>/ordinaut.log``.

A child or embedded server that dies is restarted with backoff, servers first (see
:mod:`ordinaut.cli.supervisor`); after five failures within a minute ``ordinaut up`` gives up
and stops. Ctrl-C or SIGTERM stops everything in order: API, workers, beat, then Redis and
PostgreSQL; the runs worker lets running runs finish for ``--grace`` seconds, then hands the
rest back for immediate retry (:mod:`ordinaut.runs.shutdown`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import platformdirs

from ordinaut import logs
from ordinaut.celery import BEAT_SCHEDULER
from ordinaut.cli.supervisor import Child, Supervisor
from ordinaut.config import Settings, load_settings
from ordinaut.embedded import HOST, EmbeddedPostgres, EmbeddedRedis
from ordinaut.errors import ConfigError
from ordinaut.runs import shutdown
from ordinaut.service.agents import ensure_admin
from ordinaut.store import migrate
from ordinaut.store.engine import check_database, make_engine

ENV_FILE = "ordinaut.env"
LOG_FILE = "ordinaut.log"
CELERY_CHILDREN = frozenset({"beat", "control", "worker"})


def default_data_dir() -> Path:
    """Where ``ordinaut up`` keeps its embedded servers' data."""
    return Path(platformdirs.user_data_dir("ordinaut"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="API bind address (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="API port (8080)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"data folder for the embedded servers ({default_data_dir()})",
    )
    parser.add_argument(
        "--workers", type=_workers, default=2, help="processes in the runs worker (2)"
    )
    parser.add_argument(
        "--grace",
        type=_grace,
        default=None,
        help="seconds running runs get to finish at shutdown before they are handed back "
        "(ORDINAUT_SHUTDOWN_GRACE_SECONDS, else 10)",
    )
    parser.add_argument("--flower", action="store_true", help="also start Flower")
    parser.add_argument("--flower-port", type=_port, default=5555, help="Flower port (5555)")


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"{count} is not between 1 and 64")
    return count


def _grace(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{seconds:g} is not between 0 and 3600")
    return seconds


@dataclass
class _Server:
    """An embedded server as the supervisor watches it."""

    name: str
    server: EmbeddedPostgres | EmbeddedRedis

    def exit_code(self) -> int | None:
        return self.server.exit_code()

    def restart(self) -> str:
        self.server.start()  # the same port: the children keep their URLs
        return f"{HOST}:{self.server.port}, pid {self.server.pid}"


def run(args: argparse.Namespace) -> int:
    """Bring everything up and supervise it until Ctrl-C / SIGTERM."""
    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # everything, Celery's banners included, goes to the log file; the terminal gets the rest
    log_file = (data_dir / LOG_FILE).open("a", encoding="utf-8")
    sup = Supervisor(log_file=log_file, quiet=CELERY_CHILDREN)

    def say(line: str) -> None:
        sup.log("ordinaut", line)

    stop = threading.Event()
    _log_into(say, logging.getLogger("ordinaut.embedded"))

    def on_signal(signum: int, _: FrameType | None) -> None:
        if stop.is_set():
            return
        say(f"received {signal.Signals(signum).name}: shutting down")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    servers: list[_Server] = []
    env = dict(os.environ)
    env.setdefault(logs.FORMAT_VARIABLE, "text")  # children write for the person reading
    if args.grace is not None:
        env["ORDINAUT_SHUTDOWN_GRACE_SECONDS"] = f"{args.grace:g}"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not env.get("DATABASE_URL"):
            say(f"starting embedded PostgreSQL in {data_dir} (the first start takes a few seconds)")
            pg = EmbeddedPostgres(data_dir, log_file=data_dir / "postgres.log")
            servers.append(_Server("postgres", pg))
            env["DATABASE_URL"] = pg.start()
        if not env.get("REDIS_URL"):
            say("starting embedded Redis")
            rd = EmbeddedRedis(data_dir, log_file=data_dir / "redis.log")
            servers.append(_Server("redis", rd))
            env["REDIS_URL"] = rd.start()
        if stop.is_set():
            return 130
        settings = _prepare(env, say)
        _write_env_file(data_dir, env)
        _start_children(sup, settings, env, args)
        # in the background: a child that dies while the stack comes up is restarted at once
        threading.Thread(target=_announce, args=(args, stop, say), daemon=True).start()
        # the embedded servers were started by this (the main) thread: restart them from it
        gave_up = sup.supervise(stop, servers)
        if gave_up is not None:
            say(f"{gave_up}; stopping everything")
            return 1
        return 0
    except ConfigError as exc:
        print(f"ordinaut: {exc.message}", file=sys.stderr)
        return 2
    finally:
        sup.stop_all()
        for unit in reversed(servers):
            unit.server.stop()
        (data_dir / ENV_FILE).unlink(missing_ok=True)
        if servers:
            say("stopped (data kept in " + str(data_dir) + ")")
        log_file.close()


def _log_into(say: Callable[[str], None], logger: logging.Logger) -> None:
    """Warnings of ``logger`` (e.g. a restarted server's stale lock) into the combined log."""

    class Say(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            say(record.getMessage())

    logger.addHandler(Say(logging.WARNING))
    logger.propagate = False


def _prepare(env: dict[str, str], say: Callable[[str], None]) -> Settings:
    names = ("DATABASE_URL", "REDIS_URL", "ORDINAUT_SHUTDOWN_GRACE_SECONDS")
    os.environ.update({name: env[name] for name in names if name in env})
    settings = load_settings()
    engine = make_engine(settings.database_url, pool_size=1, application_name="ordinaut-up")
    try:
        check_database(engine)
        say("applying database migrations")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            created = ensure_admin(conn, settings.admin_token)
    finally:
        engine.dispose()
    if created is not None:
        say("created the admin agent; its token is shown once, keep it:")
        say(f"    ORDINAUT_TOKEN={created.token}")
    return settings


def _write_env_file(data_dir: Path, env: dict[str, str]) -> None:
    path = data_dir / ENV_FILE
    text = f"DATABASE_URL={env['DATABASE_URL']}\nREDIS_URL={env['REDIS_URL']}\n"
    path.unlink(missing_ok=True)
    # created 0600 from the start: the URLs may carry passwords
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _start_children(
    sup: Supervisor, settings: Settings, env: dict[str, str], args: argparse.Namespace
) -> None:
    py = sys.executable
    host = f"[{args.host}]" if ":" in args.host else args.host
    env = {**env, "ORDINAUT_API_ADDRESS": f"{host}:{args.port}"}  # guarded from tools (egress)
    events = ["-E"] if args.flower else []
    celery = [py, "-m", "celery", "-A", "ordinaut"]
    quiet = ["--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    sup.start(
        Child(
            "api",
            [
                py,
                "-m",
                "uvicorn",
                "--factory",
                "ordinaut.api.app:app_from_env",
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--log-level",
                "info",
            ],
            env,
        )
    )
    sup.start(
        Child(
            "beat", [*celery, "beat", "-S", BEAT_SCHEDULER, "--loglevel", "INFO", "--pidfile="], env
        )
    )
    sup.start(
        Child(
            "control",
            [
                *celery,
                "worker",
                "-Q",
                settings.control_queue,
                "-c",
                "1",
                "-n",
                "control@%h",
                *quiet,
                *events,
            ],
            env,
        )
    )
    # the runs worker's main process hands its runs back after the grace, and cuts a step
    # still running short soon after (runs/shutdown.py); this is the margin beyond that
    worker_stop = settings.shutdown_grace_seconds + shutdown.COLD_AFTER_SECONDS + 10
    sup.start(
        Child(
            "worker",
            [
                *celery,
                "worker",
                "-Q",
                settings.runs_queue,
                "-c",
                str(args.workers),
                "-n",
                "runs@%h",
                *quiet,
                *events,
            ],
            env,
            stop_timeout=worker_stop,
        )
    )
    if args.flower:
        sup.start(
            Child(
                "flower",
                [*celery, "flower", "--address=127.0.0.1", f"--port={args.flower_port}"],
                env,
            )
        )


def _announce(args: argparse.Namespace, stop: threading.Event, say: Callable[[str], None]) -> None:
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{host}:{args.port}"
    deadline = time.monotonic() + 120
    healthy = False
    while not healthy and not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                healthy = True
        except OSError:
            stop.wait(0.5)
    if stop.is_set():
        return
    if not healthy:
        say(f"not healthy after 120 s: see the lines above, or GET {base}/health")
        return
    say(f"Ordinaut is up. API {base}   docs {base}/docs   MCP {base}/mcp")
    say(f"Dashboard {base}/ui   metrics {base}/metrics   readiness {base}/ready")
    if args.flower:
        say(f"Flower http://127.0.0.1:{args.flower_port}")
    say("Ctrl-C stops everything; data and history are kept for the next start.")
