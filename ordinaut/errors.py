"""Ordinaut's error tree: one root, each branch saying what went wrong and whether to retry.

OrdinautError                 anything Ordinaut raises on purpose
├── ConfigError               a setting is malformed or a server cannot be reached
├── ValidationError           user input is invalid (names the field); HTTP 422
│   ├── PayloadTooLarge       a body or field is over its size cap; HTTP 413
│   └── MalformedRequest      a body that is not JSON (or not UTF-8) at all; HTTP 400
├── AuthError                 no or unknown token; HTTP 401
├── Forbidden                 the token lacks a scope; HTTP 403
├── NotFound                  no such object, or not yours; HTTP 404
├── Conflict                  the object is in the wrong state for that; HTTP 409
├── ChangePending             not applied: it waits for a person's approval; HTTP 202
├── RateLimited               too many requests; HTTP 429
├── Unavailable               a server Ordinaut needs is down; HTTP 503, retry later
└── ToolError                 a tool call failed; carries retry intent
    ├── StepError             a pipeline step failed (names the step and field)
    │   └── LimitExceeded     a step's data crossed a size cap; never retryable
    └── BudgetExceeded        a step would pass a budget cap; not called, never retryable
"""

from __future__ import annotations


def error_detail(code: str, message: str, field: str | None = None) -> dict[str, str]:
    """The JSON shape of every error, over HTTP and MCP: ``{"code", "message", "field"?}``."""
    out = {"code": code, "message": message}
    if field:
        out["field"] = field
    return out


class OrdinautError(Exception):
    """Root of every error Ordinaut raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        """The public JSON shape: ``{"code", "message", "field"?}``."""
        return error_detail(self.code, self.message, self.field)


class ConfigError(OrdinautError):
    """A setting is malformed, or a configured server cannot be reached."""

    code = "config_error"


class ValidationError(OrdinautError):
    """User input is invalid; ``field`` names where (dotted path)."""

    code = "validation_error"
    status = 422


class PayloadTooLarge(ValidationError):
    """A body or a field is over its size cap."""

    code = "payload_too_large"
    status = 413


class MalformedRequest(ValidationError):
    """The body cannot be read as JSON at all (syntax, encoding)."""

    code = "bad_request"
    status = 400


class AuthError(OrdinautError):
    """The request carries no token, or a token that is unknown or revoked."""

    code = "unauthorized"
    status = 401


class Forbidden(OrdinautError):
    """The caller is known but lacks the scope for this operation."""

    code = "forbidden"
    status = 403


class NotFound(OrdinautError):
    """No such object, or it belongs to another agent."""

    code = "not_found"
    status = 404


class Conflict(OrdinautError):
    """The object exists but is in the wrong state for the operation."""

    code = "conflict"
    status = 409


class ChangePending(OrdinautError):
    """A create or update crossed a limit whose on_exceed is "approve": it is kept as a
    pending change (``change``, its public JSON) instead of being applied. The API answers
    202 with the change; MCP reports it with this message and code."""

    code = "change_pending"
    status = 202

    def __init__(self, message: str, change: dict[str, object]) -> None:
        super().__init__(message, field=None)
        self.change = change


class RateLimited(OrdinautError):
    """Too many requests in the current window; ``retry_after`` in seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(OrdinautError):
    """A server Ordinaut needs (PostgreSQL) cannot be reached; retry after ``retry_after`` s."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ToolError(OrdinautError):
    """A tool call failed.

    ``retryable`` says whether the same call may succeed later (timeouts, 5xx);
    ``retry_after`` is the earliest sensible retry, in seconds, when the tool said so.
    """

    code = "tool_error"
    status = 502

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.retryable = retryable
        self.retry_after = retry_after


class StepError(ToolError):
    """A pipeline step failed; ``step_id`` names it."""

    code = "step_error"

    def __init__(
        self,
        step_id: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(
            f"step {step_id!r}: {message}",
            retryable=retryable,
            retry_after=retry_after,
            field=field,
        )
        self.step_id = step_id


class LimitExceeded(StepError):
    """A step's data crossed a byte cap (input, output, the run's receipts); never retryable.

    The message starts with ``limit_exceeded:`` and names the cap and its setting, so a
    run's ``error`` says which limit stopped it.
    """

    code = "limit_exceeded"

    def __init__(self, step_id: str, message: str, *, field: str | None = None) -> None:
        super().__init__(step_id, f"{self.code}: {message}", retryable=False, field=field)


class BudgetExceeded(ToolError):
    """A step would pass a budget cap (tool calls, LLM tokens): it is not called, and the run
    fails without retries. The message starts with ``budget_exceeded:`` and names the cap."""

    code = "budget_exceeded"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}", retryable=False)
