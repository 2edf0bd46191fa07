"""/tasks routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ordinaut.api.deps import RT, Caller, Conn, utcnow
from ordinaut.service import tasks
from ordinaut.service.models import Page, TaskCreate, TaskPublic

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.post("", status_code=201, response_model=TaskPublic)
def create_task(body: TaskCreate, conn: Conn, caller: Caller, rt: RT) -> TaskPublic:
    """Create a scheduled task (its pipeline and schedule are validated first)."""
    return tasks.create_task(
        conn, caller, body, now=utcnow(), default_tz=rt.settings.default_timezone
    )


@router.get("", response_model=Page)
def list_tasks(
    conn: Conn,
    caller: Caller,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """The caller's tasks, newest first."""
    items, nxt = tasks.list_tasks(conn, caller, status=status, limit=limit, after=cursor)
    return Page(items=items, next_cursor=nxt)


@router.get("/{task_id}", response_model=TaskPublic)
def get_task(task_id: uuid.UUID, conn: Conn, caller: Caller) -> TaskPublic:
    """One task, with its next run in UTC and local time."""
    return tasks.get_task(conn, caller, task_id)
