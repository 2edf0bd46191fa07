"""Ordinaut's Celery beat scheduler: the database is the schedule.

Use with ``celery -A ordinaut beat -S ordinaut.beat.scheduler:DatabaseScheduler`` (the
app's default). Beat sleeps until the next due instant, and each ``tick()``:

1. when a task is due (by what the database said at the last look), claims the due tasks
   (``FOR UPDATE SKIP LOCKED``, batched) and fires them (:func:`.firing.fire_due_tasks`):
   the runs of tasks that run freely are created right there and published after the batch
   commits (their publish time rides along in the next batch's transaction); the others
   become due_work for dispatch. The same transaction reads when to wake next;
2. otherwise looks at the database only when due_work becomes dispatchable, or when
   PostgreSQL said a task or due work changed (:mod:`ordinaut.store.notices`;
   at most once per ``beat_max_interval``, the bound on how late such a change is noticed),
   or once every :data:`BACKSTOP_LOOK_EVERY` seconds — one read-only query, no commit. Idle,
   beat asks nothing of the database but a read of its listening socket;
3. requests ``ordinaut.dispatch`` when due_work became dispatchable since the last look,
   and ``ordinaut.relay`` (at most once a second) when the outbox holds events for the
   stream — both coalesced: no second message while one is pending;
4. runs the internal periodic entry (``ordinaut.maintain``: reaper, sweeper, dispatch and
   relay backstops) through Celery's own machinery;
5. sleeps until the earliest of: the next task due, the next due_work row becoming
   dispatchable, the next internal entry, the backstop look — or until a change notice
   arrives (it waits on the listening socket, so a new task due in a second is noticed at
   once; notices are then looked into at most once per ``beat_max_interval``).

The cost of a tick depends on how many tasks are due, not on how many are stored: the
queries use the partial index on ``task.next_run_at`` and the index on
``due_work.not_before``.

Outages (:class:`ordinaut.outage.Outage`): with PostgreSQL away a tick does nothing but
retry, with backoff; with the broker away the database scheduling goes on and only the
broker sends (dispatch requests, the internal entries) wait, retried with backoff. Each
outage logs one line when it starts and one when it ends, never a traceback per tick.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import beat
from sqlalchemy.exc import DBAPIError

from ordinaut.beat.firing import fire_due_tasks
from ordinaut.clock import utcnow
from ordinaut.outage import Outage, first_line
from ordinaut.runs import wake
from ordinaut.runs.dispatch import QueuedRun
from ordinaut.runs.publish import publisher
from ordinaut.runtime import HEARTBEAT_SECONDS, HEARTBEAT_TTL, runtime_of
from ordinaut.store import queries
from ordinaut.store.notices import ChangeNotices

log = logging.getLogger("ordinaut.beat")

MAX_BATCHES_PER_TICK = 50
HEARTBEAT_EVERY = HEARTBEAT_SECONDS  # as the workers: /health reads it with a TTL of three
RELAY_EVERY = 1.0  # at most one relay request a second: a pass then takes a second's events
BACKSTOP_LOOK_EVERY = 30.0  # a look even without a change notice (time moves outside the rows)
# what a send fails with when the broker is away, under Celery's and kombu's wrappers
BROKER_ERRORS = (
    kombu.exceptions.OperationalError,
    kombu.exceptions.ConnectionError,  # py-amqp's, which kombu re-exports
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


def _broker_reason(exc: BaseException) -> str:
    """One line on why a send failed: the broker error it was raised from, if there is one."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None or isinstance(cause, BROKER_ERRORS):
            break
        cause = cause.__cause__ or cause.__context__
    return first_line(cause or exc)


class DatabaseScheduler(beat.Scheduler):  # type: ignore[misc]
    """A beat Scheduler whose schedule lives in PostgreSQL."""

    # tick() itself sleeps on the change notices and returns 0; False: it returns the seconds
    # to sleep instead (a caller that drives the ticks itself, as bench/scale.py does)
    sleeps_on_notices = True

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self._runtime = runtime_of(app)
        self._runtime.become_silent()  # beat knows what it writes: no notices to itself
        # due_work that became dispatchable after this instant has not been dispatched for
        # yet; the first tick looks at everything already due (e.g. left over from downtime)
        self._checked_until: datetime | None = None
        self._wake: queries.Wake | None = None  # what the database said at the last look
        self._next_look = 0.0  # monotonic time before which a change notice waits
        self._backstop_look = 0.0  # monotonic time of the next look even with no notice
        self._notices = ChangeNotices(self._runtime.engine)
        self._changed = True  # a change notice arrived since the last look
        # runs this beat created and published, waiting to be stamped by the next write
        self._published: list[tuple[uuid.UUID, datetime]] = []
        self._next_relay = 0.0
        self._last_heartbeat = 0.0
        self._database = Outage("PostgreSQL")
        self._broker = Outage("the broker (Redis)", cap=5.0)
        # Celery's cap on a sleep: the internal entry and the backstop look bound it instead
        kwargs.setdefault("max_interval", BACKSTOP_LOOK_EVERY)
        super().__init__(app, *args, **kwargs)

    def setup_schedule(self) -> None:
        """Load the internal periodic entry (maintenance) from the app config."""
        self.merge_inplace(self.app.conf.beat_schedule)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One scheduling pass; returns the seconds to sleep (having waited on notices)."""
        if not self._database.may_try(time.monotonic()):
            return self._database.wait(time.monotonic())
        try:
            wake = self._look(utcnow())
        except DBAPIError as exc:
            self._wake = None
            if line := self._database.failed(time.monotonic(), first_line(exc)):
                log.error("%s", line)
            return self._database.wait(time.monotonic())
        if line := self._database.recovered(time.monotonic()):
            log.warning("%s", line)
        self._heartbeat()
        internal = float(self.max_interval)
        if self._broker.may_try(time.monotonic()):
            try:
                # connect first: Celery's tick pops an entry before it builds the producer,
                # and an entry popped by a failed connection would never be scheduled again
                _ = self.producer
            except Exception as exc:  # the internal entries need the broker; scheduling does not
                self._broker_failed(exc)
            else:
                internal = float(super().tick(*args, **kwargs))
        wait = min(internal, self._backstop_look - time.monotonic())
        if self._broker.down:  # retry the broker on its backoff, not at the next due instant
            wait = min(wait, max(1.0, self._broker.wait(time.monotonic())))
        later = utcnow()  # sleep until the next due instant, not one tick's duration past it
        for at in (wake.next_task_at, wake.next_work_at):
            if at is not None:
                wait = min(wait, (at - later).total_seconds())
        if self._changed or self._published:  # a look is owed: sleep until it may be taken
            return max(0.0, min(wait, self._next_look - time.monotonic()))
        if not self.sleeps_on_notices:  # the caller drives the ticks (a benchmark)
            return max(wait, 0.0)
        if wait > 0 and self._notices.wait(wait):
            self._changed = True  # tick again now; the look itself keeps its spacing
        return 0.0

    def _look(self, now: datetime) -> queries.Wake:
        """Fire what is due and learn when to wake next; the database only when needed.

        A tick touches the database when a task is due (by the last look), when due_work
        becomes dispatchable, when a change notice came (at most once per
        ``beat_max_interval``) and once every :data:`BACKSTOP_LOOK_EVERY` seconds; Celery's own
        entries wake beat too, and those ticks cost nothing here.
        """
        last = self._wake
        due = last is None or any(
            at is not None and at <= now for at in (last.next_task_at, last.next_work_at)
        )
        if self._notices.pending():
            self._changed = True
        moment = time.monotonic()
        # runs published since the last write get their stamp at the next look, which a
        # notice (beat's own commit sends one) brings within ``beat_max_interval``
        told = (self._changed or bool(self._published)) and moment >= self._next_look
        quiet = not due and not told and moment < self._backstop_look
        if last is not None and quiet:
            return last
        self._changed = False  # notices that arrive from here on ask for the next look
        rt = self._runtime
        if last is None or (last.next_task_at is not None and last.next_task_at <= now):
            seen = self._fire(now)
        else:
            with rt.engine.begin() as conn:
                queries.mark_published_at(conn, self._published)
                seen = queries.next_wake(conn, now, since=self._checked_until)
            self._published.clear()
        self._checked_until = now
        self._wake = seen
        self._next_look = time.monotonic() + rt.settings.beat_max_interval
        self._backstop_look = time.monotonic() + BACKSTOP_LOOK_EVERY
        # due_work whose not_before passed since the last look (a retry's backoff ended,
        # jittered work, run_now, work that waits for dispatch's rules): dispatch it now
        if seen.became_due:
            self.send(wake.DISPATCH_TASK)
        if seen.unrelayed and time.monotonic() >= self._next_relay:
            self._next_relay = time.monotonic() + RELAY_EVERY
            self.send(wake.RELAY_TASK)
        return seen

    def _fire(self, now: datetime) -> queries.Wake:
        """Fire due tasks batch by batch; each batch commits, then publishes its runs."""
        rt, settings = self._runtime, self._runtime.settings
        for _ in range(MAX_BATCHES_PER_TICK):
            stamps = list(self._published)
            result = fire_due_tasks(
                rt.engine,
                now,
                limit=settings.beat_batch_size,
                grace=timedelta(seconds=settings.misfire_grace_seconds),
                cap=settings.misfire_cap,
                published=stamps,
                since=self._checked_until,
            )
            del self._published[: len(stamps)]  # committed with the batch
            if result.queued:  # first thing after the commit: every due run pays this wait
                self._publish(result.queued)
            if result.due_work and result.claimed == settings.beat_batch_size:
                # a burst: dispatch starts on this batch while beat writes the next ones
                self.send(wake.DISPATCH_TASK)
            if result.claimed:
                log.info(
                    "fired %d due tasks: %d runs, %d due_work, %d skipped, %d completed, %d paused",
                    result.claimed,
                    len(result.queued),
                    result.due_work,
                    result.skipped,
                    result.completed,
                    result.paused,
                )
            if result.claimed < settings.beat_batch_size:
                break
        return result.wake

    def _publish(self, runs: tuple[QueuedRun, ...]) -> None:
        """Send the runs this beat created; their publish time is stamped by the next write.

        Best effort: a run whose message does not go out stays ``queued`` without a
        ``published_at``, and the sweeper sends it a lease later.
        """
        if not self._broker.may_try(time.monotonic()):
            return
        try:
            publisher(self.app, self.producer)(runs)
        except Exception as exc:  # whatever it is, a send must never stop beat
            self._broker_failed(exc)
            return
        self._broker_ok()
        at = utcnow()
        self._published.extend((run.id, at) for run in runs)

    # Overrides a private method of celery.beat.Scheduler (Celery 5.5-5.7; ``connection``
    # and ``producer`` call it): the public API has no way to bound the connect retries.
    def _ensure_connected(self) -> Any:
        """Connect to the broker with one quick attempt, not Celery's long retry loop.

        Celery's beat retries a broker connection for minutes inside ``tick()``; here the
        database scheduling must go on while Redis is away, so a failed attempt raises at
        once (the callers treat the broker as best effort) and the next tick tries again.
        """
        return self.connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)

    def send(self, task: str) -> None:
        """Ask the control worker for a dispatch or relay pass (unless one is pending).

        Best effort: with the broker unreachable the work is already committed and the
        periodic maintenance picks it up once Redis is back, so a failed send must never stop
        beat (which would also stop every other scheduled occurrence). While the broker is
        known to be down, sends wait for its backoff instead of failing one by one.
        """
        if not self._broker.may_try(time.monotonic()):
            return
        try:
            sent = wake.request(self.app, self._runtime, task, producer=self.producer)
        except Exception as exc:  # whatever it is, a send must never stop beat
            self._broker_failed(exc)
        else:
            if sent:
                self._broker_ok()

    # Overrides Celery's, which logs a stack and a traceback (about 150 lines) for each entry
    # it fails to send: several a second while the broker is away.
    def apply_entry(self, entry: beat.ScheduleEntry, producer: Any = None) -> None:
        """Send one internal entry; a broker failure counts towards the outage, quietly."""
        log.debug("sending %s", entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:  # Celery wraps the cause in a SchedulingError
            self._broker_failed(exc)
        else:
            self._broker_ok()

    def _broker_failed(self, exc: BaseException) -> None:
        """Count a failed send towards the broker's outage (said once, with its reason)."""
        if line := self._broker.failed(time.monotonic(), _broker_reason(exc)):
            log.error("%s; due work is still scheduled into PostgreSQL meanwhile", line)

    def _broker_ok(self) -> None:
        if line := self._broker.recovered(time.monotonic()):
            log.warning("%s", line)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_EVERY:
            return
        self._last_heartbeat = time.monotonic()
        try:
            rt = self._runtime
            rt.redis.set(rt.heartbeat_key("beat"), utcnow().isoformat(), ex=HEARTBEAT_TTL)
        except Exception:  # Redis down: the broker errors will say so louder
            log.debug("beat heartbeat failed", exc_info=True)

    def close(self) -> None:
        super().close()
        self._notices.close()
        self._runtime.close()

    @property
    def info(self) -> str:
        return f"    . database scheduler -> {self._runtime.settings.namespace}"
