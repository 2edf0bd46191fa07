"""Who an MCP request acts as: the agent owning the bearer token, with that agent's scopes.

Over streamable HTTP, :class:`AgentTokens` is the SDK's ``TokenVerifier``: it checks the
token with ``Service.authenticate`` (the same tokens, cache and failed-attempt limit as the
HTTP API) on every request, so a token revoked or rotated through this process stops working
at once (through another, within ``ORDINAUT_AUTH_CACHE_SECONDS``); the SDK answers 401 to a
request without a valid token. Tools then read the agent from the request's access token
(:func:`from_request`). Over stdio the token is fixed for the process (:func:`from_token`)
and is checked again on every call, for the same reason. Scopes are checked by the service,
per operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from ordinaut.errors import AuthError
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service

Identify = Callable[[], Awaitable[Principal]]
"""Returns the agent the current MCP request acts as, or raises ``AuthError``."""


class AgentTokens:
    """``TokenVerifier`` over Ordinaut's agent tokens."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's agent as an AccessToken, or None when it is unknown or revoked."""
        try:
            agent = await anyio.to_thread.run_sync(self.service.authenticate, token)
        except AuthError:  # the SDK answers 401; other errors reach http.JsonErrors
            return None
        return AccessToken(
            token=token,
            client_id=str(agent.agent_id),
            subject=str(agent.agent_id),
            scopes=sorted(agent.scopes),
            claims={"name": agent.name},
        )


async def from_request() -> Principal:
    """The agent of the HTTP request being served (set by the SDK's auth middleware)."""
    token = get_access_token()
    if token is None:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
    name = (token.claims or {}).get("name", "")
    return Principal(uuid.UUID(token.client_id), str(name), frozenset(token.scopes))


def from_token(service: Service, token: str) -> Identify:
    """An Identify for a process that acts as one token's agent (stdio)."""

    async def identify() -> Principal:
        return await anyio.to_thread.run_sync(service.authenticate, token)

    return identify
