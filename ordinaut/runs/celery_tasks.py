"""Ordinaut's Celery tasks: thin shells that hand a Runtime to dispatch, execute, reap, sweep.

- ``ordinaut.dispatch`` (control queue): lease due work, create runs, publish ``execute_run``.
  Requests for it are coalesced: :func:`request_dispatch` sets a short-lived Redis flag and
  sends a message only when none is pending; the task clears the flag before it leases, so
  work that arrives later is always picked up by this pass or by the one it triggers.
- ``ordinaut.execute_run(run_id, *more)`` (runs queue; ``acks_late``,
  ``reject_on_worker_lost``): claim and run one run, or a group of runs in order (see
  :func:`~ordinaut.runs.dispatch.message_groups`). Duplicates are harmless: each claim is
  conditional. The later runs of a group are reserved for this worker for one lease
  (extended while it works through the group); if the worker dies, they are still
  ``queued`` and the sweeper re-sends them once the reservation has run out.
- ``ordinaut.reap`` and ``ordinaut.sweep`` (control queue, beat entries): see
  :mod:`ordinaut.runs.maintenance`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from ordinaut.celery_app import control_queue
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import execute as executing
from ordinaut.runs import lease, maintenance
from ordinaut.runtime import Runtime

log = logging.getLogger("ordinaut.runs")

HEARTBEAT_SECONDS = 5.0
# a pending-dispatch flag older than this is ignored (its message was lost): a bound on how
# long a lost wake-up can suppress others; the periodic dispatch runs meanwhile anyway
DISPATCH_FLAG_SECONDS = 10


def utcnow() -> datetime:
    return datetime.now(UTC)


def dispatch_flag(rt: Runtime) -> str:
    """Redis key that says "a dispatch message is on its way"."""
    return rt.key("dispatch", "pending")


def request_dispatch(app: Celery, rt: Runtime, *, producer: Any = None) -> bool:
    """Ask a worker to dispatch soon, unless a request is already pending; True if sent."""
    try:
        if not rt.redis.set(dispatch_flag(rt), "1", nx=True, ex=DISPATCH_FLAG_SECONDS):
            return False
    except Exception:  # Redis trouble: the send below will say so, or succeed anyway
        log.debug("dispatch flag unavailable", exc_info=True)
    app.send_task("ordinaut.dispatch", queue=control_queue(rt.settings), producer=producer)
    return True


def register(app: Celery, runtime: Callable[[], Runtime]) -> None:
    """Define dispatch, execute_run, reap and sweep on ``app``."""

    def publish(runs: Sequence[dispatching.QueuedRun]) -> None:
        # one pipelined round trip to Redis per batch instead of one per message
        with app.producer_or_acquire() as producer, producer.batch():
            for group in dispatching.message_groups(runs):
                ids = [str(run.id) for run in group]
                # argsrepr given: Celery would otherwise saferepr() the args of every message
                execute_run.apply_async(
                    args=ids,
                    argsrepr=",".join(ids),
                    kwargsrepr="{}",
                    priority=min(run.priority for run in group),
                    producer=producer,
                )

    @app.task(name="ordinaut.dispatch", ignore_result=True)  # type: ignore[untyped-decorator]
    def dispatch() -> dict[str, int]:
        rt = runtime()
        try:
            rt.redis.delete(dispatch_flag(rt))
        except Exception:  # the flag expires by itself
            log.debug("could not clear the dispatch flag", exc_info=True)
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
    def execute_run(run_id: str, *more: str) -> str:
        rt = runtime()
        ids = [uuid.UUID(one) for one in (run_id, *more)]
        lease.reserve(rt.engine, rt.settings, ids[1:], rt.identity)
        wake, statuses = False, []
        for i, one in enumerate(ids):
            outcome = executing.execute_run(
                rt.engine, rt.settings, one, rt.identity, sleep=time.sleep, reserved=ids[i + 1 :]
            )
            wake = wake or outcome.wake_dispatch
            statuses.append(outcome.status)
        if wake:
            request_dispatch(app, rt)
        return ",".join(statuses)

    @app.task(name="ordinaut.reap", ignore_result=True)  # type: ignore[untyped-decorator]
    def reap() -> int:
        rt = runtime()
        reaped = maintenance.reap(rt.engine, rt.settings)
        if any(r.frees_slot or (r.retry_at and r.retry_at <= utcnow()) for r in reaped):
            request_dispatch(app, rt)
        return len(reaped)

    @app.task(name="ordinaut.sweep", ignore_result=True)  # type: ignore[untyped-decorator]
    def sweep() -> int:
        rt = runtime()
        return len(maintenance.sweep(rt.engine, rt.settings, utcnow(), publish))

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
