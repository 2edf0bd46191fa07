"""The MCP server over streamable HTTP at ``/mcp``, inside the API process.

:func:`attach` builds a fresh server and its SDK HTTP app for one FastAPI app, adds the
``/mcp`` route and returns an :class:`McpHttp` whose :meth:`~McpHttp.running` must wrap the
API's lifespan (Starlette does not run a routed app's lifespan, and the SDK's session
manager runs once per instance, hence one ``attach`` per app).

Choices, each on purpose:

* **Auth**: every request needs an agent's bearer token (:class:`~ordinaut.mcp.auth.AgentTokens`);
  without one the SDK answers 401 with ``WWW-Authenticate: Bearer``. Ordinaut issues its own
  static tokens, so there is no OAuth server to advertise: ``resource_server_url`` is unset,
  no protected-resource metadata is served, and ``issuer_url`` (required by ``AuthSettings``)
  is never used.
* **Stateless, JSON responses**: each POST is answered on its own, with no ``Mcp-Session-Id``
  kept in memory, so any API process behind a load balancer can serve any request and an API
  restart breaks no client. Ordinaut's tools need no server-to-client stream.
* **Errors stay JSON**: :class:`JsonErrors` wraps the SDK app's middleware, so an
  :class:`~ordinaut.errors.OrdinautError` raised while checking a token (PostgreSQL down:
  503; too many failed attempts from the address: 429) gets the API's error shape, and so
  does any unexpected exception (500 ``internal_error``, logged with the request id),
  instead of the SDK's plain-text 500.
* **No DNS-rebinding filter**: that Host/Origin allow-list protects unauthenticated local
  servers. A browser never attaches the bearer token on its own, and the filter would refuse
  deployments reached by a host name (compose's ``api:8080``); the REST routes have none either.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordinaut.errors import OrdinautError, error_detail
from ordinaut.mcp import auth
from ordinaut.mcp.server import build_server
from ordinaut.service import context
from ordinaut.service.facade import Service

log = logging.getLogger("ordinaut.mcp")
PATH = "/mcp"
_UNUSED_ISSUER = AnyHttpUrl("http://127.0.0.1/")


class McpHttp:
    """One API app's MCP endpoint: the SDK app and its session manager."""

    def __init__(self, service: Service, path: str = PATH) -> None:
        self.path = path
        self.server = build_server(service, auth.from_request)
        self.app: Starlette = self.server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            auth=AuthSettings(issuer_url=_UNUSED_ISSUER, resource_server_url=None),
            token_verifier=auth.AgentTokens(service),
        )
        self.app.add_middleware(JsonErrors)

    def running(self) -> AbstractAsyncContextManager[Any]:
        """The session manager's run context; enter it in the API's lifespan."""
        return self.server.session_manager.run()


class JsonErrors:
    """ASGI middleware: errors escaping the SDK's own middleware as the API's JSON shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            request_id = context.current_request_id()
            if isinstance(exc, OrdinautError):
                status, body = exc.status, exc.to_dict()
            else:
                log.exception("MCP request %s failed", request_id)
                status = 500
                body = error_detail(
                    "internal_error",
                    f"an unexpected error; it is logged with request id {request_id}",
                )
            headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else {}
            response = JSONResponse(
                {"error": {**body, "request_id": request_id}}, status, headers=headers
            )
            await response(scope, receive, send)


def attach(api: FastAPI, service: Service) -> McpHttp:
    """Serve MCP at ``/mcp`` in ``api`` and return the endpoint (see :meth:`McpHttp.running`)."""
    endpoint = McpHttp(service)
    api.router.routes.append(Route(endpoint.path, endpoint=endpoint.app, include_in_schema=False))
    return endpoint
