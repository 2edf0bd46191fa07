"""/tasks routes: thin adapters over ``Service``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query

from ordinaut.api.deps import Caller, IdempotencyKey, Svc
from ordinaut.service.models import (
    ChangePublic,
    Page,
    RunNowAccepted,
    SkipIn,
    SnoozeIn,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])


PENDING = {
    202: {
        "model": ChangePublic,
        "description": "Not applied: it crosses one of the agent's limits whose on_exceed is "
        "approve; it waits for a person's approval as this pending change",
    }
}


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    operation_id="create_task",
    responses=PENDING,  # type: ignore[arg-type]
)
def create_task(
    body: TaskCreate, svc: Svc, caller: Caller, idempotency_key: IdempotencyKey = None
) -> TaskPublic:
    """Create a scheduled task; schedule and pipeline are validated before anything is stored.

    With an ``Idempotency-Key`` header, a retry of the same request returns the first task.
    """
    return svc.create_task(caller, body, idempotency_key=idempotency_key)


@router.get("", response_model=Page, operation_id="list_tasks")
def list_tasks(
    svc: Svc,
    caller: Caller,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """The caller's tasks (every task for admins), newest first."""
    items, nxt = svc.list_tasks(caller, status=status, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=nxt)


@router.get("/{task_id}", response_model=TaskPublic, operation_id="get_task")
def get_task(task_id: uuid.UUID, svc: Svc, caller: Caller) -> TaskPublic:
    """One task, with its next run in UTC and in its own zone."""
    return svc.get_task(caller, task_id)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    operation_id="update_task",
    responses=PENDING,  # type: ignore[arg-type]
)
def update_task(task_id: uuid.UUID, body: TaskUpdate, svc: Svc, caller: Caller) -> TaskPublic:
    """Change any mutable field; a schedule change recomputes the next run."""
    return svc.update_task(caller, task_id, body)


@router.post(
    "/{task_id}/run_now", status_code=202, response_model=RunNowAccepted, operation_id="run_now"
)
def run_now(
    task_id: uuid.UUID, svc: Svc, caller: Caller, idempotency_key: IdempotencyKey = None
) -> RunNowAccepted:
    """Run the task once, now, besides its schedule."""
    return svc.run_now(caller, task_id, idempotency_key=idempotency_key)


@router.post("/{task_id}/snooze", response_model=TaskPublic, operation_id="snooze_task")
def snooze_task(task_id: uuid.UUID, body: SnoozeIn, svc: Svc, caller: Caller) -> TaskPublic:
    """Push the next occurrence by ``seconds``, or move it to ``until``."""
    return svc.snooze_task(caller, task_id, body)


@router.post("/{task_id}/skip_next", response_model=TaskPublic, operation_id="skip_next")
def skip_next(
    task_id: uuid.UUID, svc: Svc, caller: Caller, body: Annotated[SkipIn | None, Body()] = None
) -> TaskPublic:
    """Drop the next ``count`` occurrences (recorded as skipped runs)."""
    return svc.skip_next(caller, task_id, body or SkipIn())


@router.post("/{task_id}/pause", response_model=TaskPublic, operation_id="pause_task")
def pause_task(task_id: uuid.UUID, svc: Svc, caller: Caller) -> TaskPublic:
    """Stop starting new runs (running ones finish)."""
    return svc.pause_task(caller, task_id)


@router.post("/{task_id}/resume", response_model=TaskPublic, operation_id="resume_task")
def resume_task(task_id: uuid.UUID, svc: Svc, caller: Caller) -> TaskPublic:
    """Continue from the schedule; occurrences missed while paused follow the misfire policy."""
    return svc.resume_task(caller, task_id)


@router.post("/{task_id}/cancel", response_model=TaskPublic, operation_id="cancel_task")
def cancel_task(task_id: uuid.UUID, svc: Svc, caller: Caller) -> TaskPublic:
    """Stop the schedule for good and cancel queued runs; a running run stops between steps."""
    return svc.cancel_task(caller, task_id)
