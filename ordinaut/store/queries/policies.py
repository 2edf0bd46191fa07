"""Policy rows: agents' and tasks' rules, budget usage, shared rate-limit calls, and the
decisions written on a run (each with its outbox event, in the same statement)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ordinaut.store.queries import jsonb
from ordinaut.store.queries.render import literal
from ordinaut.store.tables import agent, rate_call, task
from ordinaut.vocabulary import RunStatus, TaskStatus

POLICY_COLUMNS = ("quiet_hours", "budgets")
MAX_DECISIONS = 100  # per run; later ones are still events, not kept on the run


def set_agent_policy(
    conn: Connection, agent_id: uuid.UUID, column: str, rule: Mapping[str, Any] | None
) -> bool:
    """Set (or clear, with None) an agent's ``quiet_hours`` or ``budgets``; False if no agent."""
    if column not in POLICY_COLUMNS:
        raise ValueError(f"not a policy column: {column}")
    value = sa.null() if rule is None else dict(rule)
    done = conn.execute(
        sa.update(agent).where(agent.c.id == agent_id).values({column: value}).returning(agent.c.id)
    ).first()
    return done is not None


def agent_policies(
    conn: Connection, agent_id: uuid.UUID
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """An agent's (quiet_hours, budgets) rules as stored."""
    row = conn.execute(
        sa.select(agent.c.quiet_hours, agent.c.budgets).where(agent.c.id == agent_id)
    ).first()
    return (None, None) if row is None else (row.quiet_hours, row.budgets)


@dataclass(frozen=True)
class TaskPolicies:
    """The rules that apply to a task's runs: quiet hours (the task's, else its agent's) and
    both budgets."""

    task_id: uuid.UUID
    agent_id: uuid.UUID
    quiet_hours: dict[str, Any] | None
    task_budgets: dict[str, Any] | None
    agent_budgets: dict[str, Any] | None


_TASK_POLICIES = sa.text(
    """
    SELECT t.id AS task_id, t.created_by AS agent_id,
           coalesce(t.quiet_hours, a.quiet_hours) AS quiet_hours,
           t.budgets AS task_budgets, a.budgets AS agent_budgets
    FROM task t JOIN agent a ON a.id = t.created_by
    WHERE t.id = ANY(:ids)
    """
)


def task_policies(conn: Connection, task_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, TaskPolicies]:
    """The policies of each task in ``task_ids`` (missing tasks are left out)."""
    ids = list(set(task_ids))
    if not ids:
        return {}
    return {
        r.task_id: TaskPolicies(**r._mapping) for r in conn.execute(_TASK_POLICIES, {"ids": ids})
    }


_TASK_BUDGETS_OF = sa.text(
    f"""
    SELECT id, title, budgets FROM task
    WHERE created_by = :agent_id AND budgets IS NOT NULL
      AND status <> {literal(TaskStatus.CANCELED)}
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
    """
)


def task_budgets_of(
    conn: Connection, agent_id: uuid.UUID, limit: int
) -> list[tuple[uuid.UUID, str, dict[str, Any]]]:
    """(task id, title, budgets) of an agent's tasks that have a budget, newest first."""
    rows = conn.execute(_TASK_BUDGETS_OF, {"agent_id": agent_id, "limit": limit})
    return [(r.id, r.title, r.budgets) for r in rows]


UsageKey = tuple[uuid.UUID, str, str]
"""(subject id — an agent or a task —, counter, period)."""


_USAGE = sa.text(
    f"""
    SELECT u.subject_id, u.counter, u.period, u.used
    FROM budget_usage u
    JOIN jsonb_to_recordset(CAST(:keys AS jsonb)) AS k(subject_id uuid, counter text, period text)
      ON u.subject_id = k.subject_id AND u.counter = k.counter AND u.period = k.period
    WHERE {jsonb.among("u.subject_id", "keys", key="subject_id")}
    """
)


def usage(conn: Connection, keys: Iterable[UsageKey]) -> dict[UsageKey, int]:
    """What each usage counter in ``keys`` holds (absent counters are 0, and left out)."""
    rows = [{"subject_id": str(s), "counter": c, "period": p} for s, c, p in set(keys)]
    if not rows:
        return {}
    found = conn.execute(_USAGE, {"keys": jsonb.dumps(rows)})
    return {(r.subject_id, r.counter, r.period): int(r.used) for r in found}


_ADD_USAGE = sa.text(
    """
    INSERT INTO budget_usage AS u (subject_id, counter, period, used)
    SELECT k.subject_id, k.counter, k.period, k.amount
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS k(subject_id uuid, counter text, period text, amount bigint)
    ON CONFLICT (subject_id, counter, period)
    DO UPDATE SET used = u.used + EXCLUDED.used, updated_at = now()
    """
)


def add_usage(conn: Connection, amounts: Mapping[UsageKey, int]) -> None:
    """Add to usage counters (created at 0 when new), in one statement."""
    rows = [
        {"subject_id": str(s), "counter": c, "period": p, "amount": n}
        for (s, c, p), n in amounts.items()
        if n
    ]
    if rows:
        conn.execute(_ADD_USAGE, {"rows": jsonb.dumps(rows)})


_ADD_DECISION = sa.text(
    f"""
    WITH noted AS (
        UPDATE task_run
        SET decisions = CASE WHEN jsonb_array_length(decisions) < {MAX_DECISIONS}
                             THEN decisions || jsonb_build_array(CAST(:decision AS jsonb))
                             ELSE decisions END
        WHERE id = :run_id
        RETURNING id, task_id
    )
    INSERT INTO outbox (topic, payload)
    SELECT 'task.run.policy',
           jsonb_build_object('run_id', id, 'task_id', task_id) || CAST(:decision AS jsonb)
    FROM noted
    """
)


def add_decision(conn: Connection, run_id: uuid.UUID, decision: Mapping[str, Any]) -> None:
    """Append a policy decision (``{"what", "at", "why", ...}``) to a run, with its
    ``task.run.policy`` event."""
    conn.execute(_ADD_DECISION, {"run_id": run_id, "decision": jsonb.dumps(dict(decision))})


# --- shared rate limits --------------------------------------------------------------------


_RATE_CALLS = sa.text(
    """
    SELECT started_at, held_until FROM rate_call
    WHERE key = :key AND (started_at > :since OR held_until > :now)
    """
)


def rate_calls(
    conn: Connection, key: str, *, since: datetime, now: datetime
) -> tuple[list[datetime], int]:
    """Starts under ``key`` after ``since``, and how many calls hold a slot at ``now``."""
    rows = conn.execute(_RATE_CALLS, {"key": key, "since": since, "now": now}).all()
    starts = [r.started_at for r in rows if r.started_at > since]
    held = sum(1 for r in rows if r.held_until is not None and r.held_until > now)
    return starts, held


_INSERT_RATE_CALLS = sa.text(
    """
    INSERT INTO rate_call (key, run_id, started_at, held_until)
    SELECT k.key, :run_id, :now, k.held_until
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS k(key text, held_until timestamptz)
    RETURNING id
    """
)


def insert_rate_calls(
    conn: Connection,
    keys: Sequence[tuple[str, datetime | None]],
    *,
    run_id: uuid.UUID | None,
    now: datetime,
) -> list[int]:
    """Record one call start under each (key, held_until); returns the row ids."""
    if not keys:
        return []
    rows = jsonb.dumps([{"key": k, "held_until": h} for k, h in keys])
    found = conn.execute(_INSERT_RATE_CALLS, {"rows": rows, "run_id": run_id, "now": now})
    return [int(r.id) for r in found]


def release_rate_calls(conn: Connection, ids: Sequence[int]) -> None:
    """A call ended: its concurrency slots are free (its start still counts per minute)."""
    if ids:
        conn.execute(
            sa.update(rate_call).where(rate_call.c.id.in_(list(ids))).values(held_until=None)
        )


def prune_rate_calls(conn: Connection, key: str, *, before: datetime, now: datetime) -> int:
    """Forget ``key``'s call starts older than ``before`` that hold no slot at ``now``."""
    done = conn.execute(
        sa.delete(rate_call).where(
            rate_call.c.key == key,
            rate_call.c.started_at < before,
            sa.or_(rate_call.c.held_until.is_(None), rate_call.c.held_until < now),
        )
    )
    return int(done.rowcount)


# --- digests (quiet hours on_quiet: digest) ------------------------------------------------

_JOIN_DIGEST = sa.text(
    """
    INSERT INTO digest_call AS d (task_id, step_path, until, leader_run_id, items)
    VALUES (:task_id, :step, :until, :run_id, CAST(:item AS jsonb))
    ON CONFLICT (task_id, step_path, until) DO UPDATE
        SET items = d.items || EXCLUDED.items
        WHERE jsonb_array_length(d.items) < :max_items
          AND d.leader_run_id <> EXCLUDED.leader_run_id
    RETURNING leader_run_id
    """
)
_DIGEST_LEADER = sa.text(
    "SELECT leader_run_id FROM digest_call "
    "WHERE task_id = :task_id AND step_path = :step AND until = :until"
)


def join_digest(
    conn: Connection,
    *,
    task_id: uuid.UUID,
    step_path: str,
    until: datetime,
    run_id: uuid.UUID,
    args: Any,
    max_items: int,
) -> uuid.UUID | None:
    """Lead or join the digest of ``task_id``'s step ``step_path`` deferred to ``until``, in
    one statement (two runs arriving together get one leader).

    Returns the leader's id (``run_id`` itself when it leads; a leader asking again keeps
    leading), or None when the digest is full (the caller defers on its own).
    """
    params = {
        "task_id": task_id,
        "step": step_path,
        "until": until,
        "run_id": run_id,
        "item": jsonb.dumps([args]),
        "max_items": max_items,
    }
    found = conn.execute(_JOIN_DIGEST, params).first()
    if found is not None:
        leader: uuid.UUID = found.leader_run_id
        return leader
    again = conn.execute(_DIGEST_LEADER, params).scalar()
    return run_id if again == run_id else None


_DIGEST_ITEMS = sa.text(
    "SELECT items FROM digest_call WHERE leader_run_id = :run_id AND step_path = :step "
    "ORDER BY until DESC LIMIT 1"
)


def digest_items(conn: Connection, run_id: uuid.UUID, step_path: str) -> list[Any] | None:
    """The arguments of every call merged into the digest ``run_id`` leads at ``step_path``."""
    items = conn.execute(_DIGEST_ITEMS, {"run_id": run_id, "step": step_path}).scalar()
    return items if isinstance(items, list) else None


def close_digest(conn: Connection, run_id: uuid.UUID, step_path: str) -> None:
    """The leader made its call: forget the digest."""
    conn.execute(
        sa.text("DELETE FROM digest_call WHERE leader_run_id = :run_id AND step_path = :step"),
        {"run_id": run_id, "step": step_path},
    )


def set_task_policy_columns(
    conn: Connection, task_id: uuid.UUID, values: Mapping[str, Any]
) -> None:
    """Set a task's policy columns (``quiet_hours``, ``budgets``, ``worker_pool``)."""
    conn.execute(sa.update(task).where(task.c.id == task_id).values(dict(values)))


__all__ = [
    "TaskPolicies",
    "UsageKey",
    "add_decision",
    "add_usage",
    "agent_policies",
    "close_digest",
    "digest_items",
    "insert_rate_calls",
    "join_digest",
    "prune_rate_calls",
    "queued_ahead",
    "rate_calls",
    "release_rate_calls",
    "set_agent_policy",
    "task_budgets_of",
    "task_policies",
    "usage",
]


_QUEUED_AHEAD = sa.text(
    f"SELECT count(*) FROM task_run WHERE status = {literal(RunStatus.QUEUED)} "
    "AND worker_pool IS NULL"
)


def queued_ahead(conn: Connection) -> int:
    """Queued runs of the common runs queue (published or about to be, not yet started)."""
    return int(conn.execute(_QUEUED_AHEAD).scalar_one())
