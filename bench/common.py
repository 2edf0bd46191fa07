"""Benchmark scaffolding: a private database and Redis namespace, real Celery processes.

A :class:`Bench` creates a fresh, migrated database on the PostgreSQL server named by
``DATABASE_URL`` (it never touches another database) and a private key namespace on the
Redis server named by ``REDIS_URL``; ``close()`` stops every process it started, drops the
database and deletes the namespace's keys. Processes run ``python -m celery`` exactly as a
deployment would, in their own process groups, logging to files under ``log_dir``.

``bench.common`` is also a Celery app module (``celery -A bench.common worker``) whose only
task, ``bench.noop``, counts itself in Redis: the plain-Celery ceiling, configured with
Ordinaut's own broker and worker settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ordinaut.config import Settings
from ordinaut.store import migrate
from ordinaut.store.engine import make_engine

NOOP_COUNTER = "bench:noop:count"
NOOP_FIRST = "bench:noop:first"
NOOP_LAST = "bench:noop:last"
STAMPS = "bench:stamps"  # start times of plain Celery beat's every-N-seconds entry


def _admin_conninfo(db_url: str) -> str:
    url = make_url(db_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


class Proc:
    """A child process in its own process group, output in a log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, process_group=0
        )
        self._terminated = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the whole process group (a worker's pool included)."""
        self._terminated = self._terminated or sig == signal.SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """SIGKILL the whole process group: a crash, as far as Ordinaut can tell."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            if not self._terminated:
                self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


class Bench:
    """One benchmark's private database, namespace and processes."""

    def __init__(self, database_url: str, redis_url: str, **overrides: Any) -> None:
        self.admin = _admin_conninfo(database_url)
        self.db_name = f"ordinaut_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        url = make_url(database_url).set(drivername="postgresql+psycopg", database=self.db_name)
        self.settings = Settings.model_validate(
            {
                "DATABASE_URL": url.render_as_string(hide_password=False),
                "REDIS_URL": redis_url,
                "namespace": f"bench{uuid.uuid4().hex[:10]}",
                **overrides,
            }
        )
        self.engine: Engine = make_engine(self.settings.database_url, pool_size=2)
        migrate.upgrade(self.engine)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.log_dir = Path(tempfile.mkdtemp(prefix="ordinaut-bench-"))
        self.procs: list[Proc] = []
        self.extra_env: dict[str, str] = {}  # more settings for the processes, by variable

    # --- processes ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
        s = self.settings
        env.update(
            DATABASE_URL=s.database_url,
            REDIS_URL=s.redis_url,
            ORDINAUT_NAMESPACE=s.namespace,
            ORDINAUT_LEASE_SECONDS=str(s.lease_seconds),
            ORDINAUT_DISPATCH_BATCH_SIZE=str(s.dispatch_batch_size),
            ORDINAUT_DISPATCH_QUEUE_WINDOW=str(s.dispatch_queue_window),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def celery(self, name: str, *args: str, app: str = "ordinaut") -> Proc:
        argv = [sys.executable, "-m", "celery", "-A", app, *args]
        proc = Proc(name, argv, self.env(), self.log_dir)
        self.procs.append(proc)
        return proc

    def start_worker(
        self, name: str, queue: str, *, concurrency: int | None = None, app: str = "ordinaut"
    ) -> Proc:
        """A worker on ``<namespace>.<queue>``; default concurrency unless given."""
        args = ["worker", "-Q", f"{self.settings.namespace}.{queue}", "-n", f"{name}@%h"]
        if concurrency is not None:
            args += ["-c", str(concurrency)]
        args += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
        return self.celery(name, *args, app=app)

    def start_beat(self, name: str = "beat") -> Proc:
        return self.celery(name, "beat", "--loglevel", "WARNING", "--pidfile=")

    def start_api(self, port: int, name: str = "api") -> Proc:
        """The HTTP API (uvicorn, one process) on 127.0.0.1:``port``."""
        argv = [sys.executable, "-m", "uvicorn", "--factory", "ordinaut.api.app:app_from_env"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        proc = Proc(name, argv, self.env(), self.log_dir)
        self.procs.append(proc)
        return proc

    def wait_workers(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` Ordinaut workers have reported ready."""
        pattern = f"{self.settings.namespace}:heartbeat:worker:*"
        wait_for(lambda: len(list(self.redis.scan_iter(pattern))) >= count, timeout, self)

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited; see {proc.log_path}")

    def stop_processes(self, timeout: float = 20.0) -> None:
        """SIGTERM every process at once, then wait for each (SIGKILL after ``timeout``)."""
        for proc in self.procs:
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in reversed(self.procs):
            proc.stop(max(0.1, deadline - time.monotonic()))
        self.procs.clear()

    # --- data ---------------------------------------------------------------------------

    def agent(self) -> uuid.UUID:
        with self.engine.begin() as conn:
            agent_id: uuid.UUID = conn.execute(
                sa.text(
                    "INSERT INTO agent (name, scopes) VALUES ('bench', '{admin}') "
                    "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
                )
            ).scalar_one()
        return agent_id

    def insert_once_tasks(
        self, first: datetime, count: int, spacing_seconds: float, payload: Mapping[str, Any]
    ) -> None:
        """``count`` active once-tasks due at first, first + spacing, …; beat fires them."""
        expr = first.replace(microsecond=0).isoformat()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO task (title, created_by, schedule_kind, schedule_expr, timezone,
                                      payload, next_occurrence_at, next_run_at)
                    SELECT 'bench ' || i, :agent, 'once', :expr, 'UTC', CAST(:payload AS jsonb),
                           :first + i * make_interval(secs => :spacing),
                           :first + i * make_interval(secs => :spacing)
                    FROM generate_series(0, :count - 1) AS i
                    """
                ),
                {
                    "agent": self.agent(),
                    "expr": expr,
                    "payload": json.dumps(payload),
                    "first": first,
                    "spacing": spacing_seconds,
                    "count": count,
                },
            )

    def commits(self) -> int:
        """Committed transactions in the bench database so far, as PostgreSQL publishes them.

        A backend publishes its counts when it goes idle (at most once a second) and when it
        disconnects, so a figure read while the processes still run may miss some: read it
        after :meth:`stop_processes` for an exact count.
        """
        time.sleep(1.2)  # backends report their counters at most about once a second
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.db_name,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def backend_pids(self) -> list[int]:
        """PostgreSQL backends connected to the bench database now."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.db_name,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def cpu(self) -> CpuMeter:
        """A meter of the CPU used by this bench's processes and their database backends."""
        return CpuMeter(self)

    # --- teardown -----------------------------------------------------------------------

    def close(self) -> None:
        self.stop_processes()
        self.engine.dispose()
        keys = list(self.redis.scan_iter(match=f"{self.settings.namespace}:*", count=1000))
        for i in range(0, len(keys), 1000):
            self.redis.delete(*keys[i : i + 1000])
        self.redis.close()
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


class CpuMeter:
    """CPU seconds (user + system) spent by the bench's processes (with their children, e.g.
    Celery's pool) and by the PostgreSQL backends serving the bench database, between
    :meth:`start` and :meth:`stop`.

    Processes are sampled at both ends; one that appears in between counts from zero, one
    that disappears in between is counted up to its last sample (the pools keep their
    connections, so almost nothing is lost). Redis is shared with other work and left out.
    """

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.first: dict[int, float] = {}
        self.roles: dict[int, str] = {}
        self.spent: dict[str, float] = {}  # by role, after :meth:`stop`

    def _sample(self) -> dict[int, float]:
        roles = dict.fromkeys(self.bench.backend_pids(), "postgres")
        for proc in self.bench.procs:
            with contextlib.suppress(psutil.Error):
                top = psutil.Process(proc.proc.pid)
                roles[top.pid] = proc.name
                roles.update(
                    (child.pid, f"{proc.name} pool") for child in top.children(recursive=True)
                )
        seconds: dict[int, float] = {}
        for pid, role in roles.items():
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                seconds[pid] = t.user + t.system
                self.roles[pid] = role
        return seconds

    def start(self) -> CpuMeter:
        self.first = self._sample()
        return self

    def stop(self) -> float:
        """CPU seconds spent since :meth:`start`; :attr:`spent` splits them by process."""
        last = self._sample()
        self.spent = {}
        for pid, seconds in last.items():
            role = self.roles[pid]
            self.spent[role] = self.spent.get(role, 0.0) + seconds - self.first.get(pid, 0.0)
        return max(0.0, sum(self.spent.values()))

    def split(self, per: float) -> str:
        """Where the CPU went, e.g. ``beat 0.4, runs 3.1, …`` in ms per ``per`` units."""
        parts = sorted(self.spent.items(), key=lambda item: -item[1])
        return ", ".join(f"{role} {seconds * 1000 / per:.2f}" for role, seconds in parts)


def load_average() -> str:
    """The machine's 1/5/15-minute load averages, to print beside every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


class CpuHog:
    """A CPU-bound process (a busy loop) for figures measured "with a CPU hog"."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def wait_for(
    check: Callable[[], Any], timeout: float, bench: Bench | None = None, interval: float = 0.05
) -> Any:
    """Poll ``check`` until truthy; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if bench is not None:
            bench.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- the plain-Celery ceiling: ``celery -A bench.common worker`` ---------------------------


def _plain_app() -> Any:
    from celery import Celery

    from ordinaut.celery import celery_config
    from ordinaut.config import load_settings

    settings = load_settings()
    app = Celery("bench", set_as_current=False)
    config = celery_config(settings)
    config.pop("beat_schedule")
    config.pop("beat_scheduler", None)  # Celery's own scheduler, not Ordinaut's
    queue = f"{settings.namespace}.runs"
    config["task_routes"] = {"bench.noop": {"queue": queue}, "bench.stamp": {"queue": queue}}
    if os.environ.get("BENCH_STAMP_EVERY"):  # plain Celery beat: one entry every N seconds
        every = float(os.environ["BENCH_STAMP_EVERY"])
        config["beat_schedule"] = {"stamp": {"task": "bench.stamp", "schedule": every}}
    app.conf.update(config)
    client = redis.Redis.from_url(settings.redis_url)
    counter = f"{settings.namespace}:{NOOP_COUNTER}"
    first, last = f"{settings.namespace}:{NOOP_FIRST}", f"{settings.namespace}:{NOOP_LAST}"

    @app.task(name="bench.noop", ignore_result=True, acks_late=True)  # type: ignore[untyped-decorator]
    def noop(total: int) -> None:
        n = client.incr(counter)
        if n == 1:
            client.set(first, repr(time.time()))
        if n == total:
            client.set(last, repr(time.time()))

    stamps = f"{settings.namespace}:{STAMPS}"

    @app.task(name="bench.stamp", ignore_result=True, acks_late=True)  # type: ignore[untyped-decorator]
    def stamp() -> None:
        client.rpush(stamps, repr(time.time()))

    return app


_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = _plain_app()
        return _app
    raise AttributeError(name)
