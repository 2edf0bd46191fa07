"""What an operator watches: the metrics snapshot and the readiness verdict.

Both are computed when asked, from the shared stores, so any API process answers for the
whole deployment: runs, steps, queues and lag from PostgreSQL
(:mod:`ordinaut.store.queries.metrics`), live workers and the beat's last tick from the
heartbeats in Redis (:mod:`ordinaut.runtime`: each worker refreshes its key every 5 s, with
a 15 s expiry, so a stopped worker drops out within 15 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ordinaut.runtime import Runtime, heartbeat_queues
from ordinaut.store.queries import metrics as metric_queries
from ordinaut.store.queries import ping

SCRAPE_TIMEOUT_SECONDS = 5.0
LAG_WINDOW = timedelta(minutes=5)  # started runs count towards the lag this long
BEAT_STALE_SECONDS = 30.0  # /ready fails when beat has not ticked for this long


@dataclass(frozen=True)
class Liveness:
    """What the heartbeats say: live workers per queue role, and the age of beat's tick."""

    workers: dict[str, int]  # "control" / "runs" → live workers consuming it
    beat_age_seconds: float | None  # None: no heartbeat (beat down, or never started)


@dataclass(frozen=True)
class Snapshot:
    """Every figure of one scrape."""

    runs: dict[str, int]
    steps: Sequence[metric_queries.StepStats]
    gauges: metric_queries.Gauges
    live: Liveness | None  # None when Redis did not answer


@dataclass(frozen=True)
class Readiness:
    """``ready`` and, when not, every reason."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(value == "ok" for value in self.checks.values())


def liveness(rt: Runtime, now: datetime) -> Liveness:
    """Read the heartbeats (raises what Redis raises when it is down)."""
    beat = rt.redis.get(rt.heartbeat_key("beat"))
    keys = list(rt.redis.scan_iter(match=rt.heartbeat_key("worker", "*"), count=100))
    values = rt.redis.mget(keys) if keys else []
    consumed = Counter(q for value in values for q in heartbeat_queues(value))
    roles = {"control": rt.settings.control_queue, "runs": rt.settings.runs_queue}
    age = None
    if beat:
        try:
            text = beat.decode() if isinstance(beat, bytes) else str(beat)
            age = max((now - datetime.fromisoformat(text)).total_seconds(), 0.0)
        except ValueError:
            age = None
    return Liveness({role: consumed[queue] for role, queue in roles.items()}, age)


def snapshot(rt: Runtime, now: datetime) -> Snapshot:
    """The figures for ``/metrics``, in one read-only transaction under a time limit."""
    with rt.engine.begin() as conn:  # the roll-up commits on its own
        metric_queries.limit_time(conn, SCRAPE_TIMEOUT_SECONDS)
        metric_queries.roll_up(conn, now)
    with rt.engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")  # rollup + live: one view
        with conn.begin():
            metric_queries.limit_time(conn, SCRAPE_TIMEOUT_SECONDS)
            runs = metric_queries.run_counts(conn)
            steps = metric_queries.step_stats(conn)
            gauges = metric_queries.gauges(conn, now, recent=now - LAG_WINDOW)
    try:
        live: Liveness | None = liveness(rt, now)
    except Exception:  # Redis down: the database figures still stand
        live = None
    return Snapshot(runs, steps, gauges, live)


def readiness(rt: Runtime, now: datetime) -> Readiness:
    """Database, Redis, a recent beat tick, one live control and one live runs worker."""
    checks: dict[str, str] = {}
    try:
        with rt.engine.connect() as conn:
            ping(conn)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        live = liveness(rt, now)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
        return Readiness(checks)
    if live.beat_age_seconds is None:
        checks["beat"] = "no beat heartbeat"
    elif live.beat_age_seconds > BEAT_STALE_SECONDS:
        checks["beat"] = f"last tick {live.beat_age_seconds:.0f} s ago"
    else:
        checks["beat"] = "ok"
    for role, count in live.workers.items():
        checks[f"{role}_workers"] = "ok" if count else f"no live worker on the {role} queue"
    return Readiness(checks)
