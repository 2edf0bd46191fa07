"""/agenda: what will fire, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ordinaut.api.deps import Caller, Svc
from ordinaut.scheduling.agenda import MAX_ITEMS
from ordinaut.service.agenda import DEFAULT_LIMIT, AgendaPage

router = APIRouter(tags=["schedules"])


@router.get("/agenda", response_model=AgendaPage, operation_id="agenda")
def agenda(
    svc: Svc,
    caller: Caller,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    tz: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> AgendaPage:
    """Every fire of the caller's active tasks in ``[from, to)`` (default: the next 24 h;
    at most 31 days), in order, with the title and the local time in ``tz``."""
    return svc.agenda(caller, start=start, end=to, tz=tz, limit=limit, cursor=cursor)
