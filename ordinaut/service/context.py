"""The request being served: its id and the caller's network address.

The API sets both for every HTTP request (MCP over HTTP included); error responses, the
error log line and MCP tool errors carry the id, and the failed-authentication throttle
counts by the address. Outside a request both are None.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("ordinaut_request_id", default=None)
client_address: ContextVar[str | None] = ContextVar("ordinaut_client_address", default=None)


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request being served, or a fresh one outside a request."""
    return request_id.get() or new_request_id()
