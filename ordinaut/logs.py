"""How every Ordinaut process logs: one JSON object a line for machines, readable text for people.

:func:`configure` installs one stderr handler on the root logger. Its format is chosen by
``ORDINAUT_LOG_FORMAT`` (``json`` or ``text``), or else by whether stderr is a terminal:
a person at a terminal reads text, a log collector (compose, systemd, a file) gets JSON.
``ordinaut up`` asks its children for text and shows it to the person (keeping Celery's
banners out of their sight, see :mod:`ordinaut.cli.supervisor`).

A JSON line always has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` and
``message``; and, when the record carries them (``extra={...}``), the stable keys
``task_id``, ``run_id``, ``step_id``, ``attempt``, ``latency_ms``, ``status``. ``event`` is
the record's own ``event`` or its message template (the text before ``%`` arguments are
filled in), so lines of one kind group together. A traceback is in ``exc``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

FORMAT_VARIABLE = "ORDINAUT_LOG_FORMAT"
KEYS = ("task_id", "run_id", "step_id", "attempt", "latency_ms", "status")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, process: str = "") -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or (
            "warning"  # captured warnings: the template is the whole text
            if record.name == "py.warnings"
            else record.msg
            if isinstance(record.msg, str)
            else type(record.msg).__name__
        )
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
            "message": record.getMessage(),
        }
        if self.process:
            line["process"] = self.process
        for key in KEYS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def wants_json(stream: IO[str] | None = None) -> bool:
    """JSON unless ``ORDINAUT_LOG_FORMAT=text`` or (when unset) ``stream`` is a terminal."""
    chosen = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def formatter(process: str = "") -> logging.Formatter:
    """The formatter this process should use (see :func:`wants_json`)."""
    return JsonFormatter(process) if wants_json() else logging.Formatter(TEXT_FORMAT)


def configure(level: int | str = logging.INFO, *, process: str = "") -> None:
    """Root logger → stderr at ``level``, in this process's format (replacing handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(process))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings (Celery's root-user one) become log records


def reformat(*names: str, process: str = "") -> None:
    """Give the handlers of the loggers ``names`` (uvicorn's own) this process's format."""
    chosen = formatter(process)
    for name in names:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(chosen)
