"""Ordinaut's Celery tasks, defined once at module level: thin shells over ``ordinaut.runs``.

``from ordinaut.tasks import execute_run`` works, and ``celery -A ordinaut inspect
registered`` lists them. They are shared tasks, so every app built by
:func:`ordinaut.celery.create_app` (one per deployment namespace) has them; each finds
its settings and connections with :func:`ordinaut.runtime.runtime_of` (``self.app``).
Connections are built once per pool process, in ``worker_process_init``.

- ``ordinaut.dispatch`` (control queue): resume suspended runs whose resume came
  (:mod:`ordinaut.runs.suspension`), lease due work, create runs, publish ``execute_run``.
  Requests for it are coalesced (:mod:`ordinaut.runs.wake`).
- ``ordinaut.execute_run(run_id, *more)`` (runs queue; ``acks_late``,
  ``reject_on_worker_lost``): claim and run one run, or a group of runs in order (see
  :func:`~ordinaut.runs.dispatch.message_groups`). Duplicates are harmless: each claim is
  conditional. The later runs of a group are reserved for this worker for one lease
  (extended while it works through the group); if the worker dies, they are still
  ``queued`` and the sweeper re-sends them once the reservation has run out.
- ``ordinaut.reap`` and ``ordinaut.sweep`` (control queue): see
  :mod:`ordinaut.runs.maintenance`.
- ``ordinaut.relay`` (control queue, requested by beat when the outbox holds events, and by
  the API when an event is published): the outbox to Redis Streams
  (:mod:`ordinaut.events.relay`), then a trigger pass when it appended anything.
- ``ordinaut.trigger`` (control queue): the trigger consumer — external events on the
  stream → due_work of the event tasks they fire (:mod:`ordinaut.events.trigger`); a pass
  that wrote work dispatches at once, in the same task.
- ``ordinaut.webhooks`` (runs queue): send due webhook deliveries
  (:mod:`ordinaut.events.webhooks`); requested by a trigger pass that wrote deliveries and
  by maintenance for retries.
- ``ordinaut.check`` (runs queue): run due condition checks (:mod:`ordinaut.runs.conditions`;
  they call tools), requested by maintenance; a false → true edge writes due_work and asks
  for a dispatch. Both live on the runs queue so a slow tool or receiver never holds up
  dispatch.
- ``ordinaut.maintain`` (control queue, beat's one periodic entry): runs each of the above
  that has work (the backstop for every lost wake-up).

A worker also keeps a heartbeat in Redis (``/health`` counts live workers by it). Worker and
beat processes redact secret values from every log record (:mod:`ordinaut.tools.redact`).
A worker's warm shutdown (SIGTERM to the main process) is bounded: runs get
``ORDINAUT_SHUTDOWN_GRACE_SECONDS``, then are handed back (:mod:`ordinaut.runs.shutdown`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from celery import current_app, shared_task
from celery.exceptions import Reject
from celery.signals import (
    beat_init,
    celeryd_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from celery.worker import state as worker_state
from sqlalchemy.exc import DBAPIError, OperationalError

from ordinaut.clock import utcnow
from ordinaut.events import trigger as triggering
from ordinaut.events import webhooks
from ordinaut.events.relay import relay as relay_outbox
from ordinaut.outage import Outage, first_line
from ordinaut.runs import conditions, lease, maintenance, shutdown, suspension, wake
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import execute as executing
from ordinaut.runs.publish import EXECUTE_RUN, publisher
from ordinaut.runtime import (
    HEARTBEAT_SECONDS,
    HEARTBEAT_TTL,
    Runtime,
    heartbeat_value,
    runtime_of,
)
from ordinaut.store import queries
from ordinaut.tools import redact

log = logging.getLogger("ordinaut.runs")

T = TypeVar("T")

# dispatch, reap, sweep and relay arrive every second or so: with PostgreSQL away each would
# log a traceback. One line when it goes, one when it is back; meanwhile they skip, with
# backoff. One per (pool) process.
_database = Outage("PostgreSQL")


def _periodic(call: Callable[[], T], idle: T) -> T:
    """``call()``, or ``idle`` while PostgreSQL is unreachable (said once, not per call)."""
    if not _database.may_try(time.monotonic()):
        return idle
    try:
        result = call()
    except DBAPIError as exc:
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise  # a bug, not an outage
        if line := _database.failed(time.monotonic(), first_line(exc)):
            log.error("%s", line)
        return idle
    if line := _database.recovered(time.monotonic()):
        log.warning("%s", line)
    return result


def _dispatch(app: Any) -> dict[str, int]:
    rt = runtime_of(app)
    wake.clear(rt, wake.DISPATCH_TASK)

    def run() -> dict[str, int]:
        resumed = suspension.resume_due(rt.engine, rt.settings.namespace, utcnow(), publisher(app))
        result = dispatching.dispatch(
            rt.engine,
            rt.settings.namespace,
            utcnow,
            publisher(app),
            batch_size=rt.settings.dispatch_batch_size,
            window=rt.settings.dispatch_queue_window,
        )
        wake.hold(rt, result.held_back)
        return {
            "queued": len(result.queued),
            "skipped": result.skipped,
            "waiting": result.waiting,
            "resumed": len(resumed.queued),
        }

    return _periodic(run, {"queued": 0, "skipped": 0, "waiting": 0, "resumed": 0})


@shared_task(name=wake.DISPATCH_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def dispatch(self: Any) -> dict[str, int]:
    """Lease dispatchable due work, create its runs and publish them."""
    return _dispatch(self.app)


@shared_task(  # type: ignore[untyped-decorator]
    name=EXECUTE_RUN, bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def execute_run(self: Any, run_id: str, *more: str) -> str:
    """Claim and run one run (or a message's group of runs, in order)."""
    rt = runtime_of(self.app)
    ids = [uuid.UUID(one) for one in (run_id, *more)]
    lease.reserve(rt.engine, rt.settings, ids[1:], rt.identity)
    wake_dispatch, statuses = False, []
    for i, one in enumerate(ids):
        if i and shutdown.hand_back_due(time.monotonic()):
            # the worker is stopping: the rest of this message goes back to the queue for
            # the next worker (their claims are conditional, so the runs done here are no-ops)
            if wake_dispatch:
                wake.request_dispatch(self.app, rt)
            raise Reject(f"worker shutting down; {len(ids) - i} runs left", requeue=True)
        outcome = executing.execute_run(
            rt.engine,
            rt.settings,
            one,
            rt.identity,
            sleep=time.sleep,
            clock=utcnow,
            reserved=ids[i + 1 :],
        )
        wake_dispatch = wake_dispatch or outcome.wake_dispatch
        statuses.append(outcome.status)
    # the runs' events (started, ended) to the stream, and dispatch if work waits for it
    wake.after_runs(self.app, rt, wake_dispatch=wake_dispatch)
    return ",".join(statuses)


def _reap(app: Any) -> int:
    rt = runtime_of(app)
    now = utcnow()
    reaped: list[maintenance.Reaped] = _periodic(
        lambda: maintenance.reap(rt.engine, rt.settings, now), []
    )
    if any(r.frees_slot or (r.retry_at and r.retry_at <= now) for r in reaped):
        wake.request_dispatch(app, rt)
    return len(reaped)


def _sweep(app: Any) -> int:
    rt = runtime_of(app)
    backlog = runs_backlog(app, rt.settings.runs_queue)
    return _periodic(
        lambda: len(
            maintenance.sweep(rt.engine, rt.settings, utcnow(), publisher(app), backlog=backlog)
        ),
        0,
    )


def _relay(app: Any) -> int:
    rt = runtime_of(app)
    wake.clear(rt, wake.RELAY_TASK)
    wake.clear(rt, wake.EVENT_RELAY)
    published = _periodic(lambda: relay_outbox(rt.engine, rt.redis, rt.settings.namespace), 0)
    if published:
        _trigger(app)
    return published


def _trigger(app: Any) -> int:
    """A trigger pass; dispatches the work it wrote and sends the webhooks it enqueued."""
    rt = runtime_of(app)
    idle = triggering.PassResult(0, 0, 0, 0)

    def run() -> triggering.PassResult:
        try:
            return triggering.consume(rt.engine, rt.redis, rt.settings.namespace, utcnow())
        except redis.RedisError as exc:  # the backstop catches up once Redis is back
            log.warning("trigger pass skipped: Redis unavailable: %s", first_line(exc))
            return idle

    result = _periodic(run, idle)
    if result.work:
        _dispatch(app)
    if result.deliveries:
        _request_on_runs(app, wake.WEBHOOKS_TASK)
    return result.events


def _request_on_runs(app: Any, task: str) -> None:
    """Ask a runs worker for ``task`` (tool calls and webhook POSTs never hold up dispatch)."""
    rt = runtime_of(app)
    try:
        wake.request(app, rt, task, queue=rt.settings.runs_queue)
    except Exception:  # the broker is away: the next maintenance tick asks again
        log.warning("could not send %s", task, exc_info=True)


PRUNE_EVERY_SECONDS = 3600  # the event history is pruned at most this often (per deployment)


def _maintain_events(app: Any) -> dict[str, bool]:
    """The event side of maintenance: a trigger pass (Redis reads only, when idle: entries
    a dead consumer left), then what one read-only query says is due."""
    rt = runtime_of(app)
    _trigger(app)
    nothing = queries.EventBacklog(False, False, False)
    todo = _periodic(lambda: triggering.backlog(rt.engine, utcnow()), nothing)
    if todo.untriggered and _periodic(lambda: triggering.backstop(rt.engine, utcnow()), 0):
        _dispatch(app)
    if todo.checks_due:
        _request_on_runs(app, wake.CHECK_TASK)
    if todo.deliveries_due:
        _request_on_runs(app, wake.WEBHOOKS_TASK)
    if wake.once_per(rt, "prune-events", PRUNE_EVERY_SECONDS):
        days = rt.settings.event_history_days
        none: dict[str, int] = {}
        _periodic(lambda: triggering.prune(rt.engine, utcnow(), days=days), none)
    return {
        "backstop": todo.untriggered,
        "checks": todo.checks_due,
        "webhooks": todo.deliveries_due,
    }


@shared_task(name="ordinaut.reap", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def reap(self: Any) -> int:
    """Fail runs whose lease expired and plan their retries."""
    return _reap(self.app)


@shared_task(name="ordinaut.sweep", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep(self: Any) -> int:
    """Re-publish queued runs whose message was lost."""
    return _sweep(self.app)


def runs_backlog(app: Any, queue: str) -> int | None:
    """Messages waiting in ``queue`` on the broker; None when the broker cannot say."""
    try:
        with app.connection_or_acquire() as conn:
            # not passive: kombu's Redis existence check ignores global_keyprefix, and a
            # declare creates no key (the size is the sum over the priority lists)
            declared = conn.default_channel.queue_declare(queue=queue)
            return int(declared.message_count)
    except Exception:
        log.debug("could not measure the queue %s", queue, exc_info=True)
        return None


@shared_task(name=wake.RELAY_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def relay(self: Any) -> int:
    """Append unpublished outbox rows to the Redis stream."""
    return _relay(self.app)


@shared_task(name=wake.TRIGGER_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def trigger(self: Any) -> int:
    """Turn external events on the stream into due_work of the event tasks they fire."""
    wake.clear(runtime_of(self.app), wake.TRIGGER_TASK)
    return _trigger(self.app)


@shared_task(name=wake.CHECK_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def check_conditions(self: Any) -> int:
    """Run the condition checks that are due (runs queue); dispatch what fired."""
    rt = runtime_of(self.app)
    wake.clear(rt, wake.CHECK_TASK)
    fired = _periodic(lambda: conditions.check_due(rt.engine, rt.settings, utcnow), 0)
    if fired:
        wake.request_dispatch(self.app, rt)
    return fired


@shared_task(name=wake.WEBHOOKS_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def deliver_webhooks(self: Any) -> int:
    """Send the webhook deliveries that are due (runs queue)."""
    rt = runtime_of(self.app)
    wake.clear(rt, wake.WEBHOOKS_TASK)
    return _periodic(lambda: webhooks.deliver_due(rt.engine, rt.settings, utcnow), 0)


@shared_task(name="ordinaut.maintain", bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def maintain(self: Any) -> dict[str, bool]:
    """The periodic pass (beat's one internal entry): the reaper, the sweeper and the
    dispatch and relay backstops, each run only when a single read-only look at the
    database says it has work; then the event side (a trigger pass, the trigger backstop,
    condition checks, webhook retries) the same way. An idle deployment costs two read-only
    queries, three Redis reads and no commit."""
    rt = runtime_of(self.app)
    nothing = maintenance.Backlog(False, False, False, False)
    todo = _periodic(lambda: maintenance.backlog(rt.engine, rt.settings, utcnow()), nothing)
    if todo.expired_leases:
        _reap(self.app)
    if todo.stale_queued:
        _sweep(self.app)
    if todo.dispatchable:
        _dispatch(self.app)
    if todo.unrelayed:
        _relay(self.app)
    events = _maintain_events(self.app)
    return {
        "reap": todo.expired_leases,
        "sweep": todo.stale_queued,
        "dispatch": todo.dispatchable,
        "relay": todo.unrelayed,
        **events,
    }


# --- per-process resources and the worker heartbeat ---------------------------------------


@celeryd_init.connect(weak=False)  # type: ignore[untyped-decorator]
@beat_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _redact_logs(**_: Any) -> None:
    """No secret value in this process's logs (pool children inherit it when they fork)."""
    redact.install_log_redaction(os.environ)


def _ordinaut_app(app: Any) -> bool:
    return hasattr(app, "ordinaut_runtime")


@worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _open_connections(**_: Any) -> None:
    """Build this pool process's engine and Redis client once, before its first task."""
    app = current_app._get_current_object()
    if _ordinaut_app(app):
        rt = runtime_of(app)
        try:
            rt.engine.pool.connect().close()  # a pooled connection, ready for the first run
            rt.redis.ping()
        except Exception as exc:  # a warm-up only: a server still starting is no reason to fail
            log.warning("connections not warmed up: %s", str(exc).splitlines()[0])


@worker_process_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
def _close_connections(**_: Any) -> None:
    app = current_app._get_current_object()
    if _ordinaut_app(app):
        runtime_of(app).close()


def _heartbeat_loop(rt: Runtime, key: str, queues: list[str], stop: threading.Event) -> None:
    while True:
        try:
            rt.redis.set(key, heartbeat_value(utcnow(), queues), ex=HEARTBEAT_TTL)
        except Exception:  # Redis down: /health will say so; keep trying
            log.debug("worker heartbeat failed", exc_info=True)
        if stop.wait(HEARTBEAT_SECONDS):
            return


_stop_heartbeat = threading.Event()
_heartbeat: list[tuple[Runtime, str]] = []  # this worker's (runtime, key), once it is ready


@worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if not _ordinaut_app(app):
        return
    rt = runtime_of(app)
    key = rt.heartbeat_key("worker", sender.hostname)
    _heartbeat.append((rt, key))
    queues = sorted(sender.app.amqp.queues.consume_from)
    threading.Thread(
        target=_heartbeat_loop,
        args=(rt, key, queues, _stop_heartbeat),
        name="ordinaut-heartbeat",
        daemon=True,
    ).start()


@worker_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
def _end_heartbeat(**_: Any) -> None:
    """Stop the heartbeat and drop it: /health counts this worker out at once."""
    _stop_heartbeat.set()
    while _heartbeat:
        rt, key = _heartbeat.pop()
        try:
            rt.redis.delete(key)
        except Exception:  # Redis down: the key expires by itself
            log.debug("could not drop the worker heartbeat", exc_info=True)


# --- warm shutdown: a grace period, then runs are handed back -----------------------------


@worker_shutting_down.connect(weak=False)  # type: ignore[untyped-decorator]
def _start_grace(how: str = "", **_: Any) -> None:
    """In the main process, on SIGTERM: start the grace period shared with the pool."""
    app = current_app._get_current_object()
    if not _ordinaut_app(app):
        return
    _end_heartbeat()  # it takes no more work: /health should not count it meanwhile
    if how != "Warm":
        return
    grace = runtime_of(app).settings.shutdown_grace_seconds
    end = shutdown.begin(grace, time.monotonic())
    if busy := len(worker_state.active_requests):
        log.warning(
            "warm shutdown: %d running tasks have %g s to finish, then their runs are handed back",
            busy,
            grace,
        )
    # Celery's warm shutdown waits for every task however long; after the hand-back a step
    # that is still running is cut short by a cold shutdown (which ends the pool processes)
    timer = threading.Timer(
        max(0.0, end - time.monotonic()) + shutdown.COLD_AFTER_SECONDS,
        os.kill,
        args=(os.getpid(), signal.SIGQUIT),
    )
    timer.daemon = True
    timer.start()
