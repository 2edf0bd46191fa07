"""/runs routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from ordinaut.api.deps import Caller, Svc
from ordinaut.service.models import MAX_STEP_PATH, Decision, Page, RunPublic, StepData
from ordinaut.vocabulary import StepPart

router = APIRouter(prefix="/runs", tags=["runs"])


@router.get("", response_model=Page, operation_id="list_runs")
def list_runs(
    svc: Svc,
    caller: Caller,
    task_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """Runs the caller may see, newest first: summaries, without outputs or steps."""
    items, nxt = svc.list_runs(caller, task_id=task_id, status=status, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=nxt)


@router.get("/{run_id}", response_model=RunPublic, operation_id="get_run")
def get_run(run_id: uuid.UUID, svc: Svc, caller: Caller) -> RunPublic:
    """One run with the receipt of every step (inputs and outputs over 64 KiB truncated)."""
    return svc.get_run(caller, run_id)


@router.get(
    "/{run_id}/steps/{step_path}/{part}", response_model=StepData, operation_id="get_step_data"
)
def get_step_data(
    run_id: uuid.UUID,
    step_path: Annotated[str, Path(min_length=1, max_length=MAX_STEP_PATH)],
    part: StepPart,
    svc: Svc,
    caller: Caller,
) -> StepData:
    """The whole input or output of one step of a run (``step_path`` as the run shows it)."""
    return svc.get_step_data(caller, run_id, step_path, part)


@router.post("/{run_id}/cancel", response_model=RunPublic, operation_id="cancel_run")
def cancel_run(run_id: uuid.UUID, svc: Svc, caller: Caller) -> RunPublic:
    """Cancel a queued or running run (a running one stops between steps)."""
    return svc.cancel_run(caller, run_id)


@router.post("/{run_id}/approve", response_model=RunPublic, operation_id="approve_run")
def approve_run(
    run_id: uuid.UUID, svc: Svc, caller: Caller, body: Decision | None = None
) -> RunPublic:
    """Let a run that waits for approval go on from the gated step (scope runs:approve; 409
    if it is not waiting or was decided). It resumes on any worker at the next dispatch."""
    return svc.approve_run(caller, run_id, body.comment if body else None)


@router.post("/{run_id}/reject", response_model=RunPublic, operation_id="reject_run")
def reject_run(
    run_id: uuid.UUID, svc: Svc, caller: Caller, body: Decision | None = None
) -> RunPublic:
    """Refuse a run that waits for approval: it ends canceled with the reason (409 if it is
    not waiting or was decided)."""
    return svc.reject_run(caller, run_id, body.comment if body else None)
