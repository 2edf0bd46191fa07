"""Ordinaut's log lines: one JSON object with stable keys, or readable text at a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from ordinaut import logs


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("ordinaut.runs", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_the_stable_keys_the_record_carries() -> None:
    line = logs.JsonFormatter("worker").format(
        record("run %s succeeded attempt=%d", "r1", 2, run_id="r1", task_id="t1", attempt=2)
    )
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "run r1 succeeded attempt=2"
    assert data["event"] == "run %s succeeded attempt=%d"  # the template groups lines of a kind
    assert (data["run_id"], data["task_id"], data["attempt"]) == ("r1", "t1", 2)
    assert (data["level"], data["logger"], data["process"]) == ("info", "ordinaut.runs", "worker")
    assert data["ts"].endswith("+00:00")
    assert "step_id" not in data and "latency_ms" not in data


def test_an_explicit_event_and_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = record("step failed", event="step.failed", step_id="fetch", latency_ms=12.5)
        made.exc_info = sys.exc_info()
    data = json.loads(logs.JsonFormatter().format(made))
    assert data["event"] == "step.failed" and data["step_id"] == "fetch"
    assert data["latency_ms"] == 12.5
    assert "ValueError: boom" in data["exc"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("variable", "stream", "json_wanted"),
    [
        ("", io.StringIO(), True),  # not a terminal: a collector reads it
        ("", Tty(), False),  # a person reads it
        ("json", Tty(), True),
        ("text", io.StringIO(), False),
    ],
)
def test_the_format_follows_the_variable_then_the_terminal(
    monkeypatch: pytest.MonkeyPatch, variable: str, stream: io.StringIO, json_wanted: bool
) -> None:
    monkeypatch.setenv(logs.FORMAT_VARIABLE, variable)
    assert logs.wants_json(stream) is json_wanted
