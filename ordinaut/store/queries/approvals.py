"""Runs waiting for a person's approval, as ``GET /approvals`` lists them (oldest first)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ordinaut import limits
from ordinaut.store.queries import jsonb
from ordinaut.store.tables import task, task_run
from ordinaut.vocabulary import RunStatus


def list_waiting(
    conn: Connection,
    *,
    created_by: uuid.UUID | None,
    now: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Runs in ``waiting_approval`` nobody decided yet (their resume is not due at ``now``),
    oldest first by (suspended_at, id), with the task's title and the step's rendered input
    (over ``limits.INLINE_STEP_DATA_BYTES`` of JSON text: the truncation marker).

    ``created_by`` limits them to that agent's tasks (None: every agent's); ``after`` is the
    (suspended_at, id) a page continues after.
    """
    shown_input = jsonb.shown(
        task_run.c.suspended_input,
        inline=limits.INLINE_STEP_DATA_BYTES,
        preview=limits.PREVIEW_CHARS,
    ).label("input")
    # a run put in waiting_approval by other means than a gate has no suspended_at
    waiting_since = sa.func.coalesce(task_run.c.suspended_at, task_run.c.created_at)
    query: sa.Select[Any] = (
        sa.select(
            task_run.c.id.label("run_id"),
            task_run.c.task_id,
            task.c.title.label("task_title"),
            task.c.created_by,
            task_run.c.attempt,
            task_run.c.scheduled_for,
            waiting_since.label("waiting_since"),
            task_run.c.suspended_step.label("step"),
            task_run.c.suspend_reason.label("reason"),
            task_run.c.resume_at.label("timeout_at"),
            task_run.c.resume_action.label("on_timeout"),
            shown_input,
        )
        .join(task, task.c.id == task_run.c.task_id)
        .where(
            task_run.c.status == RunStatus.WAITING_APPROVAL.value,
            sa.or_(task_run.c.resume_at.is_(None), task_run.c.resume_at > now),
        )
    )
    if created_by is not None:
        query = query.where(task.c.created_by == created_by)
    if after is not None:
        query = query.where(sa.tuple_(task_run.c.suspended_at, task_run.c.id) > sa.tuple_(*after))
    return conn.execute(query.order_by(waiting_since, task_run.c.id).limit(limit)).all()
