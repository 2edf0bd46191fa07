"""The ``http`` transport: POST the arguments as JSON, read JSON back, classify failures.

:func:`call_http` sends ``POST endpoint`` with the step's arguments as the body, the step's
idempotency key as ``Idempotency-Key`` and, when the tool has :class:`~ordinaut.tools.spec.Auth`,
``{header}: {prefix}{secret}``. The step's timeout bounds each phase (connect, write, each
read) of the request. Outcomes:

* 2xx → the JSON body (an empty body is ``null``); a body that is not JSON → non-retryable.
* 408, 429, 5xx, timeouts, connection errors → ``ToolError(retryable=True)``.
* any other status (4xx, 3xx: redirects are not followed) → ``ToolError(retryable=False)``.
* ``Retry-After`` (seconds or an HTTP date) → ``ToolError.retry_after`` in seconds.

Every connection goes through the egress policy (:mod:`ordinaut.tools.guarded`): a refused
address fails the step, non-retryable, before anything is sent. Responses over
:data:`MAX_RESPONSE_BYTES` are refused. One ``httpx.Client`` per process and policy (rebuilt
after a fork) keeps connections alive between calls; it is safe across threads. Messages
carry the status and the start of the body (secret values redacted), never request
headers.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ordinaut import __version__
from ordinaut.egress import EgressPolicy
from ordinaut.errors import ToolError
from ordinaut.tools import guarded, redact, secrets
from ordinaut.tools.spec import Auth, ToolSpec

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
RETRYABLE_4XX = frozenset({408, 429})
USER_AGENT = f"ordinaut/{__version__}"

_clients: dict[EgressPolicy, httpx.Client] = {}
_clients_pid = 0
_clients_lock = threading.Lock()


def client(policy: EgressPolicy) -> httpx.Client:
    """This process's HTTP client for ``policy`` (new ones after a fork; closed at exit)."""
    global _clients_pid, _clients_lock
    if _clients_pid != os.getpid():
        if not _clients_pid:
            atexit.register(_close)
        # a forked child must not touch connections (or a lock) it shares with its parent
        _clients.clear()
        _clients_lock = threading.Lock()
        _clients_pid = os.getpid()
    with _clients_lock:
        found = _clients.get(policy)
        if found is None:
            found = _clients[policy] = httpx.Client(
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                transport=guarded.transport(policy),
            )
    return found


def _close() -> None:
    if _clients_pid == os.getpid():
        for each in _clients.values():
            each.close()


def auth_headers(auth: Auth | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The auth header for ``auth`` with its secret resolved (empty when there is none)."""
    if auth is None:
        return {}
    value = secrets.resolve(auth.secret, environ)
    if not value.isprintable():  # a header cannot carry it; say so without showing it
        raise ToolError(f"secret {auth.secret!r} contains a control character", field="auth")
    return {auth.header: auth.prefix + value}


def call_http(
    spec: ToolSpec,
    args: Mapping[str, Any],
    *,
    idempotency_key: str,
    timeout: float,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    policy: EgressPolicy,
) -> Any:
    """Call an ``http`` tool; returns its JSON output or raises a classified ToolError."""
    if spec.endpoint is None:
        raise ToolError(f"tool {spec.address!r} has no endpoint")
    headers = {"Idempotency-Key": idempotency_key, **auth_headers(spec.auth, environ)}
    return post_json(
        spec.endpoint, args, headers=headers, timeout=timeout, clock=clock, policy=policy
    )


def post_json(
    url: str,
    body: Any,
    *,
    headers: Mapping[str, str],
    timeout: float,
    clock: Callable[[], datetime],
    policy: EgressPolicy,
) -> Any:
    """POST ``body`` as JSON and return the decoded answer (errors as classified ToolErrors)."""
    try:
        with client(policy).stream(
            "POST", url, json=body, headers=dict(headers), timeout=httpx.Timeout(timeout)
        ) as response:
            raw = _read_capped(response)
    except httpx.InvalidURL as exc:
        raise ToolError(f"invalid URL: {exc}", field="endpoint") from None
    except httpx.TimeoutException:
        raise ToolError(f"timed out after {timeout:g}s", retryable=True) from None
    except httpx.TransportError as exc:
        raise ToolError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True) from None
    if not 200 <= response.status_code < 300:
        retry_after = retry_after_seconds(response.headers.get("retry-after"), clock())
        raise status_error(response.status_code, raw, retry_after)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ToolError(
            f"HTTP {response.status_code} answer is not JSON: {_snippet(raw)}", field="output"
        ) from None


def _read_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ToolError(
                f"answer is larger than {MAX_RESPONSE_BYTES} bytes", field="output"
            ) from None
        chunks.append(chunk)
    return b"".join(chunks)


def status_error(status: int, body: bytes, retry_after: float | None) -> ToolError:
    """The ToolError for a non-2xx answer: retryable for 408, 429 and 5xx."""
    retryable = status >= 500 or status in RETRYABLE_4XX
    message = f"HTTP {status}"
    if body.strip():
        message += f": {_snippet(body)}"
    if retry_after is not None:
        message += f" (retry after {retry_after:g}s)"
    return ToolError(message, retryable=retryable, retry_after=retry_after)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` value (delta-seconds or HTTP date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - now).total_seconds())
    return seconds if seconds >= 0 else None


def _snippet(body: bytes, limit: int = 300) -> str:
    # secrets are redacted before the cut: a secret cut in half would not be found later
    redactor = redact.redactor_for(os.environ)
    text = body[: 4 * (limit + redactor.longest)].decode("utf-8", errors="replace").strip()
    text = redactor.text(text[: limit + redactor.longest + 1])
    return text if len(text) <= limit else text[:limit] + "…"
