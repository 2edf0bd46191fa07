"""Request-scoped dependencies: the service and the calling agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ordinaut.service import inputs
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service


def checked_strings(request: Request) -> None:
    """The input boundary for what is not a body: path and query parameters, names and values.

    Runs before every route's own parameters (it is an app-wide dependency), so a NUL or a
    lone surrogate is a 422 naming the parameter, whatever type the route declares.
    """
    for name, value in request.path_params.items():
        if isinstance(value, str):
            inputs.check_text(value, name)
    for name, value in request.query_params.multi_items():
        inputs.check_text(name, "query")
        inputs.check_text(value, name)
    key = request.headers.get("idempotency-key")
    if key is not None:
        inputs.check_text(key, "Idempotency-Key")


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
