"""Webhooks: an agent's ``webhook_url`` receives its tasks' run events, signed.

**What is sent.** Every ``task.run.*`` event (started, succeeded, failed, canceled, skipped,
retry_scheduled, …) of a task whose owner has a webhook becomes one delivery: a ``POST`` of
the JSON body ``{"id": <outbox id>, "topic", "payload", "at"}`` with the headers

- ``X-Ordinaut-Timestamp``: Unix seconds when the attempt was made;
- ``X-Ordinaut-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the agent's webhook
  secret, over ``<timestamp>.<body>`` (the raw body bytes);
- ``X-Ordinaut-Event``: the topic; ``X-Ordinaut-Delivery``: the delivery id (the same on
  every retry — use it, or the body's ``id``, to de-duplicate).

The secret (``whsec_…``) is shown once: in the response that creates the agent with a
webhook_url, or that sets a new webhook (``PUT /agents/{id}/webhook``, which rotates it).

**When.** Deliveries are written by the trigger consumer pass that reads the events off
the stream (:mod:`ordinaut.events.trigger`; one per (agent, event) whatever re-deliveries
happen), and sent by the task ``ordinaut.webhooks`` on the runs queue, requested right
after and, for retries, by the maintenance pass. A 2xx
answer is delivered; anything else (or no answer within ``ORDINAUT_WEBHOOK_TIMEOUT_SECONDS``)
is retried after ``base x 2^(attempt-1)`` seconds (``ORDINAUT_WEBHOOK_RETRY_BASE_SECONDS``,
capped at one hour) until ``ORDINAUT_WEBHOOK_MAX_ATTEMPTS``, then failed. Each attempt's
time, status code or error and duration is recorded (``GET /agents/{id}/deliveries``).

**Where.** The URL's host is resolved at delivery and the connection goes to exactly the
address decided: loopback, private (RFC 1918, CGNAT, ULA) and link-local addresses are
refused unless ``ORDINAUT_ALLOW_PRIVATE_WEBHOOKS`` is set, and Ordinaut's own PostgreSQL,
Redis and API and the cloud metadata addresses are refused always
(:func:`ordinaut.egress.webhook_policy`). A refusal fails the delivery at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Connection, Engine

from ordinaut.config import Settings
from ordinaut.errors import ToolError
from ordinaut.store import queries
from ordinaut.tools import guarded

log = logging.getLogger("ordinaut.events")

RUN_TOPICS = "task.run."
BATCH = 50
MAX_DELAY_SECONDS = 3600.0
SIGNATURE = "X-Ordinaut-Signature"
TIMESTAMP = "X-Ordinaut-Timestamp"


def new_secret() -> str:
    """A fresh webhook signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Ordinaut-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def enqueue(conn: Connection, entries: Sequence[tuple[int, str, Any, str]]) -> int:
    """Deliveries for the run events among ``(outbox_id, topic, payload, at)`` (caller's
    transaction); returns how many were written."""
    rows = []
    for outbox_id, topic, payload, at in entries:
        if not topic.startswith(RUN_TOPICS) or not isinstance(payload, dict):
            continue
        if not payload.get("task_id"):
            continue
        body = json.dumps(
            {"id": outbox_id, "topic": topic, "payload": payload, "at": at},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        rows.append(
            {"outbox_id": outbox_id, "topic": topic, "body": body, "task_id": payload["task_id"]}
        )
    return queries.enqueue_deliveries(conn, rows)


def retry_delay(attempt: int, base: float) -> float:
    """Seconds before the attempt after ``attempt`` (1-based) failed."""
    return float(min(MAX_DELAY_SECONDS, base * 2 ** (attempt - 1)))


def _post(
    client: httpx.Client, delivery: queries.DueDelivery, delivery_no: int
) -> tuple[int | None, str | None]:
    body = delivery.body.encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP: str(stamp),
        SIGNATURE: signature(delivery.secret or "", stamp, body),
        "X-Ordinaut-Event": delivery.topic,
        "X-Ordinaut-Delivery": str(delivery_no),
        "User-Agent": "Ordinaut-Webhooks",
    }
    try:
        resp = client.post(delivery.url or "", content=body, headers=headers)
    except ToolError as exc:  # the egress policy refused the address
        return None, exc.message
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"
    if 200 <= resp.status_code < 300:
        return resp.status_code, None
    return resp.status_code, f"HTTP {resp.status_code}"


def deliver_due(engine: Engine, settings: Settings, clock: Callable[[], datetime]) -> int:
    """Send the deliveries that are due (one batch); returns how many succeeded."""
    now = clock()
    hold = now + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    with engine.begin() as conn:
        due = queries.claim_deliveries(conn, now, hold_until=hold, limit=BATCH)
    if not due:
        return 0
    delivered = 0
    transport = guarded.transport(guarded.webhook_policy_for(settings))
    with httpx.Client(
        transport=transport, timeout=settings.webhook_timeout_seconds, follow_redirects=False
    ) as client:
        for delivery in due:
            started = time.monotonic()
            code: int | None
            error: str | None
            if delivery.url is None or delivery.secret is None:
                code, error = None, "the agent has no webhook any more"
            else:
                code, error = _post(client, delivery, delivery.id)
            attempt_no = delivery.attempts + 1
            finished = clock()
            record = {
                "attempt": attempt_no,
                "at": finished.isoformat(),
                "status_code": code,
                "error": error,
                "ms": round((time.monotonic() - started) * 1000, 1),
            }
            refused = error is not None and code is None and "egress policy refused" in error
            if error is None:
                status, retry_at = "delivered", None
                delivered += 1
            elif refused or delivery.url is None or attempt_no >= settings.webhook_max_attempts:
                status, retry_at = "failed", None
            else:
                delay = retry_delay(attempt_no, settings.webhook_retry_base_seconds)
                status, retry_at = "pending", finished + timedelta(seconds=delay)
            with engine.begin() as conn:
                queries.record_attempt(
                    conn, delivery.id, record, status=status, next_attempt_at=retry_at, now=finished
                )
            if error is not None:
                log.info(
                    "webhook delivery %s attempt %d: %s (%s)",
                    delivery.id,
                    attempt_no,
                    error,
                    status,
                )
    return delivered
