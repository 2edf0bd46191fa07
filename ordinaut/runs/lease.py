"""Leases are data plus verbs: a run's ``lease_owner`` and ``leased_until``, kept alive here.

- :class:`Lease` — held while a run executes; :class:`LeaseKeeper` (one thread per process)
  extends it every third of ``lease_seconds``. An extension that finds the run no longer
  ``running`` under our name (reaped, or canceled through the API) marks the lease
  ``lost``; the executor stops before its next step. A database blip is logged and
  retried at the next beat, well inside the lease. When a worker's shutdown grace is over
  and a run is still inside a step (:mod:`ordinaut.runs.shutdown`), the keeper hands it
  back at once and marks the lease ``lost``, rather than leaving it to expire.
- :func:`reserve` — the later runs of a message that carries several are reserved for this
  worker (``lease_owner``/``leased_until`` on a ``queued`` row) and extended with the
  running run's lease; the reservation is advisory (any worker may still claim them), but
  one that runs out tells the sweeper the worker died holding their message.
- :func:`autocommit` — the executor's statements are each atomic by themselves, so they run
  without BEGIN/COMMIT round trips.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runs import shutdown
from ordinaut.store import queries

log = logging.getLogger("ordinaut.runs")


class Lease:
    """One run's lease: extended by the process's :class:`LeaseKeeper` until released."""

    def __init__(
        self,
        engine: Engine,
        run_id: uuid.UUID,
        owner: str,
        seconds: int,
        reserved: Sequence[uuid.UUID] = (),
    ) -> None:
        self.engine, self.run_id, self.owner, self.seconds = engine, run_id, owner, seconds
        self.reserved = reserved  # runs of the same message still waiting their turn
        self.lost = threading.Event()
        self.released = False
        self.next_at = time.monotonic() + seconds / 3

    def __enter__(self) -> Lease:
        _KEEPER.hold(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _KEEPER.release(self)

    def extend(self) -> None:
        """Push leased_until one lease ahead; mark the lease lost when the run is not ours."""
        self.next_at = time.monotonic() + self.seconds / 3
        try:
            with self.engine.begin() as conn:
                alive = queries.extend_lease(
                    conn,
                    self.run_id,
                    self.owner,
                    self.seconds,
                    self.reserved,
                )
        except Exception:  # a blip in the database must not kill the run; retry next beat
            log.warning(
                "run %s lease extension failed", self.run_id, extra={"run_id": str(self.run_id)}
            )
            return
        if not alive and not self.released:  # released: the run finished meanwhile
            log.warning(
                "run %s lease lost (reaped or canceled)",
                self.run_id,
                extra={"run_id": str(self.run_id)},
            )
            self.lost.set()

    def hand_back(self) -> None:
        """Give the run back now (the worker stops while it is stuck in a step)."""
        self.lost.set()  # first: the pipeline must not start another step after this
        try:
            with self.engine.begin() as conn:
                planned = queries.hand_back_run(
                    conn,
                    self.run_id,
                    self.owner,
                    error=shutdown.HANDED_BACK_IN_STEP,
                    delay=shutdown.IN_STEP_RETRY_DELAY,
                )
        except Exception:  # the database is away: the lease expires and the reaper takes it
            log.warning(
                "run %s could not be handed back", self.run_id, extra={"run_id": str(self.run_id)}
            )
            return
        if planned is not None:
            log.warning(
                "run %s handed back inside a step: the step runs again in the next attempt",
                self.run_id,
                extra={"run_id": str(self.run_id)},
            )


class LeaseKeeper:
    """A single background thread per process that extends the leases it holds.

    Holding and releasing a lease only touch a set (no thread start or join per run); the
    thread wakes every ``TICK`` seconds and extends each lease a third of its length after
    the previous extension. It is restarted in a forked child, where threads do not survive.
    """

    TICK = 0.5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: set[Lease] = set()
        self._pid: int | None = None

    def hold(self, lease: Lease) -> None:
        """Start extending ``lease`` (starting the thread in this process if needed)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name="lease-keeper", daemon=True).start()
            self._leases.add(lease)

    def release(self, lease: Lease) -> None:
        """Stop extending ``lease``; an extension already under way is harmless."""
        with self._lock:
            lease.released = True
            self._leases.discard(lease)

    def _loop(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                if shutdown.stuck_due(now):
                    stuck, self._leases = self._leases, set()
                    for lease in stuck:
                        lease.released = True
                else:
                    stuck = set()
                due = [lease for lease in self._leases if lease.next_at <= now]
            for lease in stuck:
                lease.hand_back()
            for lease in due:
                lease.extend()


_KEEPER = LeaseKeeper()


_AUTOCOMMIT: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def autocommit(engine: Engine) -> Engine:
    """``engine`` in autocommit mode (the same pool), made once per engine."""
    made = _AUTOCOMMIT.get(engine)
    if made is None:
        made = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return made


def reserve(engine: Engine, settings: Settings, run_ids: Sequence[uuid.UUID], owner: str) -> None:
    """Reserve the queued runs of a message this worker will run in turn, for one lease."""
    if run_ids:
        with autocommit(engine).connect() as conn:
            queries.reserve_runs(conn, run_ids, owner, settings.lease_seconds)
