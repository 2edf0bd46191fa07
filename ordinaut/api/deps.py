"""Request-scoped dependencies: the runtime, a connection, the calling agent, the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection

from ordinaut.runtime import Runtime
from ordinaut.service.auth import Principal, authenticate


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def utcnow() -> datetime:
    return datetime.now(UTC)


def connection(rt: Annotated[Runtime, Depends(runtime)]) -> Iterator[Connection]:
    """One transaction per request: committed on success, rolled back on any error."""
    with rt.engine.begin() as conn:
        yield conn


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def principal(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Principal:
    """The agent the bearer token belongs to (401 otherwise)."""
    with rt.engine.connect() as conn:
        return authenticate(conn, bearer(request))


Conn = Annotated[Connection, Depends(connection)]
Caller = Annotated[Principal, Depends(principal)]
RT = Annotated[Runtime, Depends(runtime)]
