"""One error shape everywhere: ``{"error": {"code", "message", "field"?, "request_id"}}``.

``request_id`` is also the ``X-Request-ID`` response header and appears in the server's log
line for that request (see :mod:`ordinaut.api.context`).
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ordinaut.errors import ChangePending, OrdinautError, RateLimited, Unavailable, error_detail
from ordinaut.service import context


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "field"?, "request_id"}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "Malformed request",
        401: "Missing or unknown token",
        403: "The token lacks a scope",
        404: "No such object, or not yours",
        409: "Wrong state for this operation",
        413: "Body too large",
        422: "Invalid input; `field` names it",
        429: "Rate limit reached; see Retry-After",
        500: "An unexpected error; quote `request_id`",
        503: "The database is unavailable; see Retry-After",
    }.items()
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """The JSON error response, with the current request id."""
    body: dict[str, str] = error_detail(code, message, field)
    body["request_id"] = context.current_request_id()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def response_for(exc: OrdinautError) -> JSONResponse:
    """The response for an error Ordinaut raised on purpose (with Retry-After if it has one)."""
    response = error_response(exc.status, exc.code, exc.message, exc.field)
    if isinstance(exc, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _field(loc: tuple[object, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def install(app: FastAPI) -> None:
    """Register handlers mapping every error to the shared JSON shape."""

    @app.exception_handler(OrdinautError)
    async def ordinaut_error(_: Request, exc: OrdinautError) -> JSONResponse:
        return response_for(exc)

    @app.exception_handler(ChangePending)
    async def change_pending(_: Request, exc: ChangePending) -> JSONResponse:
        # not an error: the request was kept as a pending change; 202 with the change
        return JSONResponse(exc.change, status_code=202)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        if err.get("type") == "json_invalid":
            return error_response(400, "bad_request", f"malformed JSON body: {err.get('msg')}")
        loc = tuple(err.get("loc", ()))
        field = _field(loc)
        msg = str(err.get("msg", "invalid value"))
        return error_response(422, "validation_error", f"{field}: {msg}", field)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), detail)
