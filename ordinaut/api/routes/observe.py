"""/metrics (Prometheus text format) and /ready (can this deployment do its work?).

``/metrics`` is computed from PostgreSQL and the Redis heartbeats at scrape time
(:mod:`ordinaut.service.observe`), not from counters in this process: every API process
reports the same figures for the whole deployment, whatever process ran the work. Scrape
any one of them. Neither endpoint needs a token (like ``/health``); both show counts only.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ordinaut.api.deps import Svc
from ordinaut.clock import utcnow
from ordinaut.service import observe
from ordinaut.store.queries.metrics import STEP_BUCKETS
from ordinaut.vocabulary import RunStatus

router = APIRouter(tags=["health"])

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SKIPPED)
OPEN = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_APPROVAL)


class _Scrape(Collector):
    """One snapshot as Prometheus metric families."""

    def __init__(self, snap: observe.Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap, g = self.snap, self.snap.gauges
        runs = CounterMetricFamily(
            "orchestrator_runs", "Runs that finished, by final status.", labels=["status"]
        )
        for status in FINISHED:
            runs.add_metric([status.value], snap.runs.get(status.value, 0))
        yield runs
        open_runs = GaugeMetricFamily(
            "orchestrator_runs_open", "Runs not finished yet, by status.", labels=["status"]
        )
        for status in OPEN:
            open_runs.add_metric([status.value], snap.runs.get(status.value, 0))
        yield open_runs
        duration = HistogramMetricFamily(
            "orchestrator_step_duration_seconds",
            "How long pipeline steps took, by tool address (cached outcomes excluded).",
            labels=["tool_addr"],
        )
        success = CounterMetricFamily(
            "orchestrator_step_success",
            "Pipeline steps that succeeded, by tool address.",
            labels=["tool_addr"],
        )
        steps = CounterMetricFamily(
            "orchestrator_steps", "Pipeline steps run, by tool address.", labels=["tool_addr"]
        )
        for s in snap.steps:
            buckets = [(str(b), float(n)) for b, n in zip(STEP_BUCKETS, s.buckets, strict=True)]
            duration.add_metric([s.address], [*buckets, ("+Inf", float(s.count))], s.seconds)
            success.add_metric([s.address], s.succeeded)
            steps.add_metric([s.address], s.count)
        yield from (duration, success, steps)
        for name, text, value in (
            (
                "orchestrator_scheduler_lag_seconds",
                "Due to started: how long the oldest due run or due work has been waiting, "
                "or the worst start delay of the last 5 minutes, whichever is larger.",
                g.lag_seconds,
            ),
            ("orchestrator_due_work_backlog", "due_work rows whose time has come.", g.due_backlog),
            (
                "orchestrator_due_work_oldest_age_seconds",
                "How long the oldest due_work row has waited.",
                g.due_oldest_seconds,
            ),
            (
                "orchestrator_runs_queued_late",
                "Queued runs whose start time has come (waiting for a runs worker).",
                g.queued_late,
            ),
            ("orchestrator_outbox_backlog", "Events not yet relayed to Redis.", g.outbox_backlog),
            (
                "orchestrator_runs_waiting_concurrency",
                "Due work held back because its concurrency key is full.",
                g.waiting_concurrency,
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)
        live = snap.live
        up = GaugeMetricFamily(
            "orchestrator_redis_up",
            "1 when the worker heartbeats could be read.",
            value=1 if live else 0,
        )
        yield up
        workers = GaugeMetricFamily(
            "orchestrator_workers_live",
            "Workers with a fresh heartbeat, by the queue they consume.",
            labels=["queue"],
        )
        for role, count in (live.workers if live else {"control": 0, "runs": 0}).items():
            workers.add_metric([role], count)
        yield workers
        if live is not None and live.beat_age_seconds is not None:
            yield GaugeMetricFamily(
                "orchestrator_beat_tick_age_seconds",
                "Seconds since beat's last heartbeat.",
                value=live.beat_age_seconds,
            )


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
def metrics(svc: Svc) -> Response:
    """Prometheus metrics for the whole deployment, computed at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(observe.snapshot(svc.runtime, utcnow())))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/ready",
    responses={200: {"description": "Ready"}, 503: {"description": "Not ready, with reasons"}},
)
def ready(svc: Svc) -> JSONResponse:
    """200 when the database and Redis answer, beat ticked in the last 30 s and at least one
    control worker and one runs worker are alive; 503 naming every failed check otherwise."""
    verdict = observe.readiness(svc.runtime, utcnow())
    body: dict[str, object] = {
        "status": "ready" if verdict.ready else "not ready",
        "checks": verdict.checks,
    }
    if not verdict.ready:
        body["reasons"] = [f"{k}: {v}" for k, v in verdict.checks.items() if v != "ok"]
    return JSONResponse(body, status_code=200 if verdict.ready else 503)
