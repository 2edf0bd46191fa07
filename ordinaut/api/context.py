"""Every request gets an id, and no request ever gets a bare ``500`` in text/plain.

:class:`RequestContext` is the outermost Ordinaut middleware. It takes the caller's
``X-Request-ID`` when it is a plain token (letters, digits, ``.`` ``_`` ``-``, up to 64) or
makes one, returns it in the ``X-Request-ID`` header of every response and in the body of
every error, and publishes it (with the client's address) in :mod:`ordinaut.service.context`.
An :class:`~ordinaut.errors.OrdinautError` raised where FastAPI's handlers do not reach (the
MCP app's token check) gets its usual response (503 when PostgreSQL is down); any other
exception (a bug) is logged once with its traceback and the request id, and answered
``500 {"error": {"code": "internal_error", ...}}``.
"""

from __future__ import annotations

import logging
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordinaut.api.errors import error_response, response_for
from ordinaut.errors import OrdinautError
from ordinaut.service import context

log = logging.getLogger("ordinaut.api")
HEADER = "X-Request-ID"
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """ASGI middleware: request id in and out, and the JSON 500 for unhandled exceptions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        rid = given if _GIVEN_ID.match(given) else context.new_request_id()
        client = scope.get("client")
        id_token = context.request_id.set(rid)
        addr_token = context.client_address.set(client[0] if client else None)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except OrdinautError as exc:  # raised outside FastAPI's handlers (the MCP app's auth)
            if started:
                raise
            await response_for(exc)(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s failed: %s %s", rid, scope.get("method"), scope.get("path"))
            if started:  # too late for an error response; the server closes the connection
                raise
            response = error_response(
                500,
                "internal_error",
                f"an unexpected error; it is logged with request id {rid}",
            )
            await response(scope, receive, send_with_id)
        finally:
            context.request_id.reset(id_token)
            context.client_address.reset(addr_token)
