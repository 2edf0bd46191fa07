"""Request-scoped dependencies: the service and the calling agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def principal(request: Request, svc: Annotated[Service, Depends(service)]) -> Principal:
    """The agent the bearer token belongs to (401 otherwise)."""
    return svc.authenticate(bearer(request))


Svc = Annotated[Service, Depends(service)]
Caller = Annotated[Principal, Depends(principal)]
