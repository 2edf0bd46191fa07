"""The audit log: who changed what, before and after, in the same transaction."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.engine import Connection, Row

from ordinaut.service.auth import Principal
from ordinaut.store import queries


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def record(
    conn: Connection,
    principal: Principal,
    action: str,
    subject_id: uuid.UUID,
    *,
    before: Row[Any] | None = None,
    changes: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit entry; with ``before`` and ``changes`` it stores the field diff."""
    body: dict[str, Any] = dict(details or {})
    if changes is not None:
        old = dict(before._mapping) if before is not None else {}
        fields = [k for k in changes if k != "updated_at"]
        body["before"] = {k: old.get(k) for k in fields}
        body["after"] = {k: changes[k] for k in fields}
    queries.insert_audit(
        conn,
        actor=principal.agent_id,
        action=action,
        subject_id=subject_id,
        details=_plain(body),
    )
