"""The demo tools: deterministic calendar, weather and inbox data, and recording senders.

Each :class:`DemoTool` has a toolset (``calendar``), a name (``list_events``), JSON Schemas
and a function ``fn(args, key) -> output`` where ``key`` is the caller's idempotency key
(the ``Idempotency-Key`` header over HTTP, ``_meta["ordinaut/idempotency_key"]`` over MCP).
The same table serves HTTP and MCP, so both transports expose identical contracts.

Read tools answer from fixed data (``list_events`` builds the day of ``start``).
``notify.send_message`` and ``inbox.send_draft`` record what they receive in
:class:`DemoState`; a repeated idempotency key returns the first answer and records nothing
new. A :class:`DemoError` is the tool refusing its input (HTTP 422, MCP ``isError``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Args = Mapping[str, Any]


class DemoError(Exception):
    """The tool refuses its input; the message says why."""


@dataclass
class DemoState:
    """What the senders received, shared by the HTTP and MCP front ends of one process."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, kind: str, key: str | None, record: dict[str, Any]) -> dict[str, Any]:
        """Record ``record`` once per idempotency key; return the (first) answer."""
        with self.lock:
            if key is not None and f"{kind}:{key}" in self.answers:
                return self.answers[f"{kind}:{key}"]
            number = len(self.sent) + 1
            answer = {"ok": True, "id": number, "ts": datetime.now(UTC).isoformat()}
            self.sent.append({"kind": kind, "id": number, "idempotency_key": key, **record})
            if key is not None:
                self.answers[f"{kind}:{key}"] = answer
            return answer


@dataclass(frozen=True)
class DemoTool:
    """One demo tool; ``address`` is ``toolset.name``."""

    toolset: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    fn: Callable[[DemoState, Args, str | None], dict[str, Any]]

    @property
    def address(self) -> str:
        return f"{self.toolset}.{self.name}"


_DATE_TIME = {"type": "string", "format": "date-time"}
_DAY = [  # (hour, minute, minutes long, title, location)
    (9, 0, 15, "Team stand-up", "Video call"),
    (11, 0, 60, "Design review: scheduling engine", "Room 2"),
    (14, 30, 30, "1:1 with Ana", "Café downstairs"),
    (17, 0, 60, "Gym", "Downtown club"),
]
_THREADS = [
    ("t-101", "ana@example.com", "Contract draft for review", "Could you look at section 4"),
    ("t-102", "bank@example.com", "Your statement is ready", "Statement for July"),
    ("t-103", "lee@example.com", "Offsite agenda", "Proposed agenda attached"),
    ("t-104", "ops@example.com", "Deploy window moved", "Thursday 18:00 instead"),
    ("t-105", "mia@example.com", "Lunch on Friday?", "Are you free around 13:00"),
    ("t-106", "news@example.com", "Weekly digest", "Ten things that happened"),
]
_OUTBOUND = [
    ("t-201", "vendor@example.com", "Invoice 2025-07 question", "2025-08-03T10:15:00+03:00"),
    ("t-202", "recruiter@example.com", "Interview slots", "2025-08-04T16:40:00+03:00"),
    ("t-203", "landlord@example.com", "Boiler repair", "2025-08-05T09:05:00+03:00"),
]
_SKIES = ["Sunny", "Partly cloudy", "Overcast", "Light rain", "Windy"]


def _parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DemoError(f"{name} is not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise DemoError(f"{name} needs a UTC offset: {value!r}")
    return moment


def list_events(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """The events of the day of ``start`` (in its offset) that overlap [start, end]."""
    start, end = _parse_time(args["start"], "start"), _parse_time(args["end"], "end")
    if end < start:
        raise DemoError("end is before start")
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    items = []
    for hour, minute, minutes, title, location in _DAY:
        begin = midnight + timedelta(hours=hour, minutes=minute)
        finish = begin + timedelta(minutes=minutes)
        if finish > start and begin < end:
            items.append(
                {
                    "id": f"ev-{begin:%Y%m%d}-{hour:02d}{minute:02d}",
                    "title": title,
                    "start": begin.isoformat(),
                    "end": finish.isoformat(),
                    "location": location,
                }
            )
    return {"items": items[: args.get("max", 50)]}


def today_forecast(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """A stable forecast derived from the city name."""
    city = args["city"]
    seed = hashlib.sha256(city.strip().lower().encode()).digest()
    high = 14 + seed[0] % 16
    low = high - 6 - seed[1] % 5
    sky = _SKIES[seed[2] % len(_SKIES)]
    rain = (seed[3] % 10) * 10
    summary = f"{sky} in {city}, high {high}°C, low {low}°C, {rain}% chance of rain"
    return {
        "city": city,
        "summary": summary,
        "high_c": high,
        "low_c": low,
        "precipitation_chance": rain,
    }


def top_unread(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """The first ``count`` unread threads."""
    threads = [
        {"thread_id": t, "from": who, "subject": subject, "snippet": snippet}
        for t, who, subject, snippet in _THREADS[: args["count"]]
    ]
    return {"threads": threads}


def find_outbound_without_reply(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """Sent mails still waiting for an answer (fixed data, at most ``max_items``)."""
    items = [
        {"thread_id": t, "to": to, "subject": subject, "sent_at": sent}
        for t, to, subject, sent in _OUTBOUND
    ]
    return {"items": items[: args.get("max_items", 20)]}


def send_message(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """Record a chat message (once per idempotency key)."""
    answer = state.deliver("message", key, {"chat_id": args["chat_id"], "text": args["text"]})
    return {"ok": True, "message_id": answer["id"], "ts": answer["ts"]}


def send_draft(state: DemoState, args: Args, key: str | None) -> dict[str, Any]:
    """Record a reply draft on a thread (once per idempotency key)."""
    if not any(args["thread_id"] == t[0] for t in _OUTBOUND + _THREADS):
        raise DemoError(f"no thread {args['thread_id']!r}")
    answer = state.deliver("draft", key, {"thread_id": args["thread_id"], "text": args["text"]})
    return {"ok": True, "draft_id": f"d-{answer['id']}", "thread_id": args["thread_id"]}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _list_of(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [name],
        "properties": {name: {"type": "array", "items": item}},
    }


_EVENT = _object(
    ["id", "title", "start", "end"],
    {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "start": _DATE_TIME,
        "end": _DATE_TIME,
        "location": {"type": "string"},
    },
)
_THREAD = _object(
    ["thread_id", "from", "subject"],
    {k: {"type": "string"} for k in ("thread_id", "from", "subject", "snippet")},
)
_OUT_THREAD = _object(
    ["thread_id", "to", "subject", "sent_at"],
    {"thread_id": {"type": "string"}, "to": {"type": "string"}, "subject": {"type": "string"}}
    | {"sent_at": _DATE_TIME},
)
_TEXT = {"type": "string", "minLength": 1, "maxLength": 4096}

DEMO_TOOLS: tuple[DemoTool, ...] = (
    DemoTool(
        "calendar",
        "list_events",
        "Events between two instants (deterministic demo day).",
        _object(
            ["start", "end"],
            {"start": _DATE_TIME, "end": _DATE_TIME, "max": {"type": "integer", "minimum": 1}},
        ),
        _list_of("items", _EVENT),
        list_events,
    ),
    DemoTool(
        "weather",
        "today_forecast",
        "Today's forecast for a city (deterministic).",
        _object(["city"], {"city": {"type": "string", "minLength": 1, "maxLength": 100}}),
        _object(
            ["city", "summary", "high_c", "low_c", "precipitation_chance"],
            {
                "city": {"type": "string"},
                "summary": {"type": "string"},
                "high_c": {"type": "integer"},
                "low_c": {"type": "integer"},
                "precipitation_chance": {"type": "integer", "minimum": 0, "maximum": 100},
            },
        ),
        today_forecast,
    ),
    DemoTool(
        "inbox",
        "top_unread",
        "The most important unread threads.",
        _object(["count"], {"count": {"type": "integer", "minimum": 1, "maximum": 20}}),
        _list_of("threads", _THREAD),
        top_unread,
    ),
    DemoTool(
        "inbox",
        "find_outbound_without_reply",
        "Sent mails that got no reply.",
        _object(
            [],
            {
                "lookback_days": {"type": "integer", "minimum": 1},
                "min_age_hours": {"type": "integer", "minimum": 0},
                "max_items": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        ),
        _list_of("items", _OUT_THREAD),
        find_outbound_without_reply,
    ),
    DemoTool(
        "inbox",
        "send_draft",
        "Queue a reply draft on a thread (recorded once per idempotency key).",
        _object(["thread_id", "text"], {"thread_id": {"type": "string"}, "text": _TEXT}),
        _object(
            ["ok", "draft_id", "thread_id"],
            {"ok": {"type": "boolean"}, "draft_id": {"type": "string"}}
            | {"thread_id": {"type": "string"}},
        ),
        send_draft,
    ),
    DemoTool(
        "notify",
        "send_message",
        "Send a chat message (recorded once per idempotency key).",
        _object(
            ["chat_id", "text"],
            {
                "chat_id": {"type": "integer", "minimum": 1},
                "text": _TEXT,
                "disable_preview": {"type": "boolean", "default": True},
            },
        ),
        _object(
            ["ok", "message_id", "ts"],
            {"ok": {"type": "boolean"}, "message_id": {"type": "integer"}, "ts": _DATE_TIME},
        ),
        send_message,
    ),
)

BY_ADDRESS: Mapping[str, DemoTool] = {tool.address: tool for tool in DEMO_TOOLS}
