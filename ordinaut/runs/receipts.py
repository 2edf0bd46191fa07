"""Step receipts and the run's database connection while it executes.

:class:`Receipts` buffers the ``step_result`` rows the pipeline reports and hands them over
to be written — before the next step's tool call (:meth:`Receipts.flush`) or with the
finish — and remembers which idempotency keys were served from earlier receipts, so those
rows say ``cached``. A row holds no secret (its input, output and error are redacted, see
:mod:`ordinaut.tools.redact`) and its error is at most ``limits.MAX_ERROR_CHARS`` long.
:class:`RunDb` gives the pipeline's own thread the run's connection and any other thread
(parallel foreach items) a pooled one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ordinaut.limits import MAX_ERROR_CHARS
from ordinaut.pipeline.executor import StepRecord
from ordinaut.store import queries
from ordinaut.tools.redact import Redactor


class RunDb:
    """Autocommit connections for the run: its own for the pipeline's thread, others pooled.

    Every statement the executor sends is one statement that is atomic by itself (a CTE
    where several rows change together), so autocommit saves the BEGIN and COMMIT round
    trips; one checkout per run (not one per statement) saves the pool's pre-pings.
    """

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine, self.conn, self.owner = engine, conn, threading.get_ident()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """The run's connection on its own thread, a pooled one elsewhere."""
        if threading.get_ident() == self.owner and not self.conn.invalidated:
            yield self.conn
        else:
            with self.engine.connect() as conn:
                yield conn


class Receipts:
    """Step receipts waiting to be written, and the keys served from earlier receipts."""

    def __init__(self, db: RunDb, claimed: queries.ClaimedRun, redactor: Redactor) -> None:
        self.db, self.claimed, self.redactor = db, claimed, redactor
        self._pending: list[dict[str, Any]] = []
        self._served: set[str] = set()
        self._lock = threading.Lock()

    def served(self, key: str) -> None:
        """Note that the step with idempotency key ``key`` was served from a receipt."""
        with self._lock:
            self._served.add(key)

    def add(self, record: StepRecord) -> None:
        """Keep a step's receipt until it is written (the executor's ``on_step``)."""
        with self._lock:
            cached = record.idempotency_key in self._served and record.status == "succeeded"
            self._pending.append(step_row(self.claimed, record, self.redactor, cached=cached))

    def take(self) -> list[dict[str, Any]]:
        """The pending receipts, handed over to the caller to write."""
        with self._lock:
            rows, self._pending = self._pending, []
        return rows

    def flush(self) -> None:
        """Write pending receipts (one statement)."""
        rows = self.take()
        if rows:
            with self.db.connection() as conn:
                queries.insert_step_results(conn, rows)


def step_row(
    claimed: queries.ClaimedRun, record: StepRecord, redactor: Redactor, *, cached: bool
) -> dict[str, Any]:
    """The ``step_result`` row of one step of the claimed run, secrets redacted."""
    return {
        "run_id": claimed.id,
        "step_path": record.step_path,
        "step_id": record.step_id,
        "address": record.address,
        "status": record.status,
        "attempt": claimed.attempt,
        "idempotency_key": record.idempotency_key,
        "cached": cached,
        "input": redactor.value(record.input),
        "output": redactor.value(record.output),
        "error": None if record.error is None else redactor.bounded(record.error, MAX_ERROR_CHARS),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
