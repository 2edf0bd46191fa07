"""Statements that join a table with a JSON batch find the batch's rows by index.

PostgreSQL estimates ``jsonb_to_recordset(:batch)`` at 100 rows whatever the batch holds; on
a table of a few thousand rows the planner then prefers hashing the batch and scanning the
whole table, a cost that grows with the table (beat's write measured 0.75 ms a fire at 3,000
runs, 0.39 ms with the index). Each such statement adds ``queries.jsonb.among`` — the
batch's ids as an array — so the plan is an index scan at any size. The plans are read with
``EXPLAIN`` (nothing runs) on tables of 3,000 rows, analyzed.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.store.queries import conditions, firing, leases, policies, suspension

ROWS = 3000
JSON_BATCHES = {"rows", "keys", "stamps", "runs", "work", "skipped", "moves"}

STATEMENTS = {
    "beat's write (stamps, task moves)": (firing._WRITE_FIRED, ("task_run", "task")),
    "publish stamps": (leases._MARK_PUBLISHED_AT, ("task_run",)),
    "condition checks advanced": (conditions._ADVANCE, ("task",)),
    "budget usage read": (policies._USAGE, ("budget_usage",)),
    "suspended runs resumed": (suspension._RESUME_RUNS, ("task_run",)),
    "suspended runs expired": (suspension._EXPIRE_RUNS, ("task_run",)),
}


@pytest.fixture
def big_tables(engine: Engine) -> Engine:
    with engine.begin() as conn:
        agent = conn.execute(
            sa.text("INSERT INTO agent (name) VALUES (:n) RETURNING id"),
            {"n": f"plans-{uuid.uuid4().hex[:8]}"},
        ).scalar_one()
        conn.execute(
            sa.text(
                """
                INSERT INTO task (title, created_by, schedule_kind, schedule_expr, timezone,
                                  payload, next_occurrence_at, next_run_at)
                SELECT 't' || i, :agent, 'cron', '* * * * *', 'UTC', '{"pipeline": []}',
                       now() + i * interval '1 minute', now() + i * interval '1 minute'
                FROM generate_series(1, :n) AS i
                """
            ),
            {"agent": agent, "n": ROWS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO task_run (task_id, status, scheduled_for, work_created_at) "
                "SELECT id, 'succeeded', next_run_at, now() FROM task"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO budget_usage (subject_id, counter, period, used) "
                "SELECT id, 'runs', '2026-12-02', 1 FROM task"
            )
        )
        conn.execute(sa.text("ANALYZE task; ANALYZE task_run; ANALYZE budget_usage"))
    return engine


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_a_json_batch_is_joined_by_index_not_by_scanning_the_table(
    big_tables: Engine, name: str
) -> None:
    statement, tables = STATEMENTS[name]
    # JSON batches empty (the plan does not depend on them), any other value NULL
    params = {key: "[]" if key in JSON_BATCHES else None for key in statement.compile().params}
    with big_tables.connect() as conn:
        plan = "\n".join(
            row[0] for row in conn.execute(sa.text(f"EXPLAIN {statement.text}"), params)
        )
    for table in tables:
        assert f"Seq Scan on {table} " not in plan, plan
