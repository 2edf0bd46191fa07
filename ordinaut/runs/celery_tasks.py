"""Ordinaut's Celery tasks: thin shells that hand a Runtime to dispatch, execute and reap."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import execute as executing
from ordinaut.runs.backoff import BackoffStrategy
from ordinaut.runtime import Runtime
from ordinaut.store import queries

log = logging.getLogger("ordinaut.runs")

HEARTBEAT_SECONDS = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def register(app: Celery, runtime: Callable[[], Runtime]) -> None:
    """Define dispatch, execute_run, reap and sweep on ``app``."""

    def publish(run_ids: Sequence[uuid.UUID]) -> None:
        with app.producer_or_acquire() as producer:
            for run_id in run_ids:
                execute_run.apply_async(args=[str(run_id)], producer=producer)

    @app.task(name="ordinaut.dispatch", ignore_result=True)  # type: ignore[untyped-decorator]
    def dispatch() -> dict[str, int]:
        rt = runtime()
        result = dispatching.dispatch(
            rt.engine,
            rt.settings.namespace,
            utcnow,
            publish,
            batch_size=rt.settings.dispatch_batch_size,
        )
        return {"queued": len(result.queued), "skipped": result.skipped, "waiting": result.waiting}

    @app.task(  # type: ignore[untyped-decorator]
        name="ordinaut.execute_run", ignore_result=True, acks_late=True, reject_on_worker_lost=True
    )
    def execute_run(run_id: str) -> str:
        rt = runtime()
        outcome = executing.execute_run(
            rt.engine, rt.settings, uuid.UUID(run_id), rt.identity, sleep=time.sleep
        )
        if outcome.wake_dispatch:
            dispatch.apply_async()
        return outcome.status

    @app.task(name="ordinaut.reap", ignore_result=True)  # type: ignore[untyped-decorator]
    def reap() -> int:
        rt = runtime()
        with rt.engine.begin() as conn:
            expired = queries.reap_expired_runs(conn, utcnow(), 500)
            events: list[tuple[str, dict[str, Any]]] = []
            for run in expired:
                retry = run.attempt <= run.max_retries and run.task_status != "canceled"
                if retry:
                    executing.plan_retry(
                        conn, rt.settings, run, BackoffStrategy(run.backoff_strategy)
                    )
                events.append(
                    (
                        "task.run.failed",
                        {
                            "run_id": str(run.id),
                            "task_id": str(run.task_id),
                            "attempt": run.attempt,
                            "error": "lease expired",
                            "retry": retry,
                        },
                    )
                )
            queries.emit(conn, events)
        if expired:
            log.warning("reaped runs with expired leases", extra={"count": len(expired)})
            dispatch.apply_async()
        return len(expired)

    @app.task(name="ordinaut.sweep", ignore_result=True)  # type: ignore[untyped-decorator]
    def sweep() -> int:
        rt = runtime()
        now = utcnow()
        with rt.engine.begin() as conn:
            stale = queries.stale_queued_runs(
                conn,
                stale_before=now - timedelta(seconds=10),
                republish_before=now - timedelta(seconds=rt.settings.lease_seconds * 5),
                limit=1000,
            )
            if stale:
                publish(stale)
                queries.mark_published(conn, stale)
        if stale:
            log.warning("re-sent queued runs without a message", extra={"count": len(stale)})
        return len(stale)

    def _heartbeat_loop(hostname: str, stop: threading.Event) -> None:
        while True:
            try:
                rt = runtime()
                rt.redis.set(
                    rt.key("heartbeat", "worker", hostname),
                    utcnow().isoformat(),
                    ex=int(HEARTBEAT_SECONDS * 3),
                )
            except Exception:  # Redis down: /health will say so; keep trying
                log.debug("worker heartbeat failed", exc_info=True)
            if stop.wait(HEARTBEAT_SECONDS):
                return

    stopper = threading.Event()

    @worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
    def _start_heartbeat(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        threading.Thread(
            target=_heartbeat_loop, args=(sender.hostname, stopper), daemon=True
        ).start()

    @worker_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
    def _stop_heartbeat(sender: Any = None, **_: Any) -> None:
        stopper.set()
