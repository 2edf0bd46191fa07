"""What waits for a person's approval: ``GET /approvals`` (runs stopped before a gated step).

Deciding is in :mod:`ordinaut.service.run_ops` (``decide_run``): approve makes the run's
resume due (it goes on from the gated step), reject cancels it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ordinaut.errors import ValidationError
from ordinaut.service import cursor
from ordinaut.service.auth import Principal
from ordinaut.service.models import ApprovalPublic
from ordinaut.store import queries
from ordinaut.vocabulary import Scope


def list_approvals(
    conn: Connection,
    principal: Principal,
    *,
    now: datetime,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[ApprovalPublic], str | None]:
    """Runs waiting for approval that the caller may decide, oldest first, with the gated
    step's rendered arguments; an admin sees every agent's."""
    principal.require(Scope.RUNS_APPROVE)
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    rows = queries.list_waiting(
        conn,
        created_by=None if principal.is_admin else principal.agent_id,
        now=now,
        after=cursor.decode(after) if after is not None else None,
        limit=limit + 1,
    )
    page = [ApprovalPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    more = None
    if len(rows) > limit:
        last = rows[limit - 1]
        more = cursor.encode(last.waiting_since, last.run_id)
    return page, more
