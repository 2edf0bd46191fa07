"""``ordinaut events``: publish an event and follow the stream through the API.

    ordinaut events publish TOPIC [--data JSON]
    ordinaut events tail [--topic PATTERN] [--since ID] [--json]

``tail`` reads ``GET /events/stream`` (Server-Sent Events) and prints one line per event —
time, topic and what it is about — or the raw entry with ``--json``. It reconnects after a
dropped connection, resuming from the last event it printed (``Last-Event-ID``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from ordinaut.cli.client import call, client
from ordinaut.errors import ConfigError


def add_commands(sub: Any) -> None:
    p_events = sub.add_parser("events", help="publish events and follow the event stream")
    events = p_events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    p = events.add_parser("publish", help="publish an external event (starts event tasks)")
    p.add_argument("topic", help="e.g. email.received")
    p.add_argument("--data", default="{}", help="the payload, a JSON object (default {})")
    p.set_defaults(func=publish)
    p = events.add_parser("tail", help="follow the event stream (Ctrl-C to stop)")
    p.add_argument("--topic", help="a pattern: '*' one segment, '#' any (e.g. task.run.#)")
    p.add_argument("--since", help="start after this event id (default: from now on)")
    p.add_argument("--json", action="store_true", help="print each entry as raw JSON")
    p.set_defaults(func=tail)


def publish(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--data is not valid JSON: {exc}", field="data") from None
    if not isinstance(payload, dict):
        raise ConfigError("--data must be a JSON object", field="data")
    accepted = call("POST", "/events", json={"topic": args.topic, "payload": payload})
    print(accepted["id"])
    return 0


def line(entry: dict[str, Any]) -> str:
    """One readable line for a stream entry."""
    found = entry.get("payload")
    payload: dict[str, Any] = found if isinstance(found, dict) else {}
    about = []
    for key in ("task_id", "run_id", "status", "attempt", "reason", "error"):
        if payload.get(key) not in (None, ""):
            about.append(f"{key}={payload[key]}")
    if entry.get("topic", "").startswith("event.external."):
        about.append(json.dumps(payload.get("payload"), ensure_ascii=False)[:200])
    return f"{entry.get('at', '')}  {entry.get('topic', '')}  {' '.join(about)}".rstrip()


def sse(response: httpx.Response) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(id, entry) for each event of a Server-Sent Events response; comments are skipped."""
    fields: dict[str, str] = {}
    for raw in response.iter_lines():
        if raw.startswith(":"):
            continue
        if raw == "":
            if "data" in fields:
                yield fields.get("id"), json.loads(fields["data"])
            fields = {}
            continue
        name, _, value = raw.partition(":")
        fields[name] = value.lstrip(" ")


def tail(args: argparse.Namespace) -> int:
    last: str | None = args.since
    params = {"topic": args.topic} if args.topic else {}
    while True:
        headers = {"Last-Event-ID": last} if last else {}
        try:
            with (
                client() as http,
                http.stream(
                    "GET", "/events/stream", params=params, headers=headers, timeout=None
                ) as resp,
            ):
                if resp.status_code >= 400:
                    resp.read()
                    call_error = resp.json().get("error", {}) if resp.content else {}
                    print(
                        f"ordinaut: {call_error.get('message', resp.status_code)}", file=sys.stderr
                    )
                    return 1
                for entry_id, entry in sse(resp):
                    last = entry_id or last
                    print(
                        json.dumps(entry, ensure_ascii=False) if args.json else line(entry),
                        flush=True,
                    )
        except httpx.TransportError as exc:
            print(f"ordinaut: stream interrupted ({exc}); reconnecting", file=sys.stderr)
            time.sleep(1.0)
