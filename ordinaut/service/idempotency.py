"""Idempotency keys for creating requests: a retried create returns the first result.

``replay_or_run`` runs inside the caller's transaction. It claims ``(agent, key)`` with an
``INSERT … ON CONFLICT DO NOTHING``; a concurrent request with the same key blocks on that
row until the first one commits, then gets its stored response. The same key with a
different request body is a 409, as is a key whose first request is still unfinished.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from ordinaut.errors import Conflict, ValidationError
from ordinaut.service.auth import Principal
from ordinaut.store import queries

M = TypeVar("M", bound=BaseModel)
MAX_KEY = 200


def fingerprint(value: object) -> str:
    """A stable hash of a request body."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def replay_or_run(
    conn: Connection,
    principal: Principal,
    key: str | None,
    operation: str,
    request: object,
    model: type[M],
    run: Callable[[], M],
) -> M:
    """Run ``run`` once per (agent, key); later calls with the key get the first result."""
    if key is None:
        return run()
    if not 1 <= len(key) <= MAX_KEY:
        raise ValidationError(
            f"Idempotency-Key must be 1-{MAX_KEY} characters", field="Idempotency-Key"
        )
    digest = fingerprint(request)
    if not queries.claim_idempotency_key(conn, principal.agent_id, key, operation, digest):
        row = queries.idempotency_entry(conn, principal.agent_id, key)
        if row.operation != operation or row.request_hash != digest:
            raise Conflict(
                "Idempotency-Key was already used with a different request",
                field="Idempotency-Key",
            )
        if row.response is None:
            raise Conflict(
                "a request with this Idempotency-Key is still running", field="Idempotency-Key"
            )
        return model.model_validate(row.response)
    result = run()
    queries.save_idempotent_response(conn, principal.agent_id, key, result.model_dump(mode="json"))
    return result
