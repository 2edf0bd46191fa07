"""Events, webhooks and condition checks: what is published, delivered and checked."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WebhookIn(BaseModel):
    """The body of ``PUT /agents/{id}/webhook``: a new URL (null removes the webhook)."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(max_length=2000)


class DeliveryPublic(BaseModel):
    """One webhook delivery: an event sent to an agent's webhook, with every attempt."""

    id: int
    outbox_id: int
    topic: str
    status: str = Field(description="pending (to be tried or retried), delivered or failed.")
    attempts: int
    attempt_log: list[dict[str, Any]] = Field(
        description="Each attempt: {attempt, at, status_code, error, ms}."
    )
    next_attempt_at: datetime
    created_at: datetime
    finished_at: datetime | None


class DeliveryPage(BaseModel):
    """A page of an agent's webhook deliveries, newest first."""

    items: list[DeliveryPublic]
    next_cursor: str | None = None


class EventIn(BaseModel):
    """The body of ``POST /events``."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$",
        description="Dot-separated segments of A-Z a-z 0-9 _ : - (e.g. email.received); "
        "event tasks match it with their schedule_expr pattern.",
    )
    payload: dict[str, Any] = Field(default_factory=dict)


class CheckPublic(BaseModel):
    """One check of a condition task: its result and why it did or did not fire."""

    id: int
    task_id: uuid.UUID
    scheduled_for: datetime
    checked_at: datetime
    result: bool | None = Field(description="The when expression's verdict (null: it failed).")
    fired: bool
    reason: str
    output: Any = Field(default=None, description="The tool's output (up to 64 KiB).")
    error: str | None = None


class CheckPage(BaseModel):
    """A page of a condition task's checks, newest first."""

    items: list[CheckPublic]
    next_cursor: str | None = None


class EventPage(BaseModel):
    """A page of the event stream (``GET /events``): oldest first."""

    items: list[dict[str, Any]] = Field(
        description="Stream entries: {id, outbox_id, topic, payload, at} (README: the stream "
        "entry format)."
    )
    next_cursor: str | None = Field(
        description="Pass as after= to continue (also when this page is short or empty)."
    )


class EventAccepted(BaseModel):
    """The answer to ``POST /events``."""

    id: uuid.UUID
    topic: str
    accepted_at: datetime
