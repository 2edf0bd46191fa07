"""step_result rows: the receipt of each pipeline step, and outcomes served from them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut import limits
from ordinaut.store.queries import jsonb
from ordinaut.store.queries.render import literal
from ordinaut.store.tables import step_result
from ordinaut.vocabulary import StepPart, StepStatus

# step receipts travel as one JSON array (``:steps``); each element has the step_result
# columns. Also a CTE of the finish statement (:func:`ordinaut.store.queries.finish_run`).
RECEIPTS_FROM_JSON = """
    INSERT INTO step_result (run_id, step_path, step_id, address, status, attempt,
                             idempotency_key, cached, input, output, error,
                             started_at, finished_at)
    SELECT CAST(s.v->>'run_id' AS uuid), s.v->>'step_path', s.v->>'step_id',
           s.v->>'address', s.v->>'status', CAST(s.v->>'attempt' AS int),
           s.v->>'idempotency_key', CAST(s.v->>'cached' AS boolean),
           NULLIF(s.v->'input', 'null'), NULLIF(s.v->'output', 'null'), s.v->>'error',
           CAST(s.v->>'started_at' AS timestamptz), CAST(s.v->>'finished_at' AS timestamptz)
    FROM jsonb_array_elements(CAST(:steps AS jsonb)) WITH ORDINALITY AS s(v, n)
    ORDER BY s.n
"""

_INSERT_STEP_RESULTS = sa.text(RECEIPTS_FROM_JSON)


def insert_step_results(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record step receipts, in order (one statement)."""
    if rows:
        conn.execute(_INSERT_STEP_RESULTS, {"steps": receipts_json(rows)})


def receipts_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``:steps`` parameter of :data:`RECEIPTS_FROM_JSON`."""
    return jsonb.dumps([{**row, "run_id": str(row["run_id"])} for row in rows])


_CACHED_STEP = sa.text(
    f"""
    SELECT s.output FROM step_result s JOIN task_run r ON r.id = s.run_id
    WHERE s.idempotency_key = :key AND s.status = {literal(StepStatus.SUCCEEDED)}
      AND r.task_id = :task_id
    ORDER BY s.id LIMIT 1
    """
)


def cached_step_output(conn: Connection, task_id: uuid.UUID, key: str) -> tuple[bool, Any]:
    """(True, output) when a step of this task with this idempotency key already succeeded.

    Scoped to the task: another task (or another agent) using the same key never sees it.
    """
    row = conn.execute(_CACHED_STEP, {"key": key, "task_id": task_id}).first()
    return (True, row[0]) if row is not None else (False, None)


def _shown(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return jsonb.shown(
        column, inline=limits.INLINE_STEP_DATA_BYTES, preview=limits.PREVIEW_CHARS
    ).label(column.name)


def steps_of_run(conn: Connection, run_id: uuid.UUID) -> Sequence[Row[Any]]:
    """A run's step receipts, in the order they were written; an input or output over
    ``limits.INLINE_STEP_DATA_BYTES`` of JSON text comes back as the truncation marker."""
    plain = [c for c in step_result.c if c.name not in ("input", "output")]
    query: sa.Select[Any] = sa.select(
        *plain, _shown(step_result.c.input), _shown(step_result.c.output)
    )
    return conn.execute(
        query.where(step_result.c.run_id == run_id).order_by(step_result.c.id)
    ).all()


@dataclass(frozen=True)
class StepData:
    """One part (input or output) of a step receipt; ``value`` is None when it is over the
    ``max_bytes`` asked for (``bytes`` says how big it is) or when there is none."""

    attempt: int
    bytes: int
    value: Any


def step_data(
    conn: Connection, run_id: uuid.UUID, step_path: str, part: StepPart, *, max_bytes: int
) -> StepData | None:
    """The whole input or output of the run's step ``step_path`` (its latest receipt), when
    it is at most ``max_bytes`` of JSON text; None when the run has no such step."""
    column = step_result.c[part.value]
    size = sa.func.coalesce(jsonb.text_size(column), 0)
    query = (
        sa.select(
            step_result.c.attempt,
            size.label("bytes"),
            sa.case((size <= max_bytes, column), else_=sa.null()).label("value"),
        )
        .where(step_result.c.run_id == run_id, step_result.c.step_path == step_path)
        .order_by(step_result.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else StepData(row.attempt, int(row.bytes), row.value)
