"""/runs routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ordinaut.api.deps import Caller, Conn
from ordinaut.service import runs
from ordinaut.service.models import Page, RunPublic

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("", response_model=Page)
def list_runs(
    conn: Conn,
    caller: Caller,
    task_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """Runs the caller may see, newest first."""
    items, nxt = runs.list_runs(
        conn, caller, task_id=task_id, status=status, limit=limit, after=cursor
    )
    return Page(items=items, next_cursor=nxt)


@router.get("/{run_id}", response_model=RunPublic)
def get_run(run_id: uuid.UUID, conn: Conn, caller: Caller) -> RunPublic:
    """One run with the receipt of every step."""
    return runs.get_run(conn, caller, run_id)
