"""/approvals: what waits for a person's approval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ordinaut.api.deps import Caller, Svc
from ordinaut.service.models import Page

router = APIRouter(prefix="/approvals", tags=["approvals"])


@router.get("", response_model=Page, operation_id="list_approvals")
def list_approvals(
    svc: Svc,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """Runs waiting for approval the caller may decide (scope runs:approve), oldest first,
    each with the gated step's rendered arguments."""
    items, nxt = svc.list_approvals(caller, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=nxt)
