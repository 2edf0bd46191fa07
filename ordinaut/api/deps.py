"""Request-scoped dependencies: the service and the calling agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


_bearer = HTTPBearer(auto_error=False, description="An agent token: `Authorization: Bearer ord_…`")


def principal(
    svc: Annotated[Service, Depends(service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The agent the bearer token belongs to (401 otherwise; 429 past the rate limit)."""
    caller = svc.authenticate(credentials.credentials if credentials else None)
    svc.check_rate(caller)
    return caller


Svc = Annotated[Service, Depends(service)]
Caller = Annotated[Principal, Depends(principal)]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retrying a create with the same key returns the first result.",
    ),
]
