"""The API's input boundary for bodies: a size cap, then the JSON checks.

:class:`InputBoundary` reads the whole body before the application sees it: over
``max_bytes`` (declared in ``Content-Length`` or streamed in chunks) is a 413; a JSON body
(``application/json`` or ``*+json``) that :func:`~ordinaut.service.inputs.parse_json`
refuses is a 422 naming the field (400 when it is not JSON at all). The body is then handed
on unchanged. ``/mcp`` bodies get the size cap only: the MCP server checks tool arguments
itself and answers with a tool error, as MCP clients expect.
"""

from __future__ import annotations

from email.message import Message as MimeMessage

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordinaut.api.errors import response_for
from ordinaut.errors import OrdinautError, PayloadTooLarge
from ordinaut.service import inputs


class InputBoundary:
    """ASGI middleware: bodies within ``max_bytes`` and JSON bodies through the input checks."""

    def __init__(self, app: ASGIApp, max_bytes: int, *, size_only: tuple[str, ...] = ()) -> None:
        self.app, self.max_bytes, self.size_only = app, max_bytes, size_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        try:
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large()
            body = await self._read(receive)
            if body is None:  # the client went away before sending it all
                return
            path: str = scope.get("path", "")
            if body and _is_json(headers) and not path.startswith(self.size_only):
                inputs.parse_json(body)
        except OrdinautError as exc:
            await response_for(exc)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes")


def _is_json(headers: Headers) -> bool:
    """Whether FastAPI would read the body as JSON (``application/json`` or ``*+json``)."""
    value = headers.get("content-type")
    if not value:
        return False
    mime = MimeMessage()
    mime["content-type"] = value
    subtype = mime.get_content_subtype()
    return mime.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
