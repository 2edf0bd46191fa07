"""Tools Ordinaut ships itself, run in-process without any I/O of their own.

* ``builtin.echo``: returns its arguments unchanged (any object in, the same object out).
* ``builtin.sleep``: ``{"seconds": 0..3600}`` → ``{"slept": seconds}``; the sleep function is
  injected so tests and the worker decide what waiting means.
* ``pipeline.foreach``: a spec only, so catalogs and validation know its shape; the pipeline
  executor runs it (``call_builtin`` refuses it).
* ``policy.quiet_hours``: a spec only; the worker answers it from the run's quiet hours
  (``{"quiet": bool, "next_allowed": ISO 8601, "window"?: str}``), for pipelines that branch
  themselves (``if: "!steps.q.quiet"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ordinaut.errors import ToolError
from ordinaut.tools.spec import ToolSpec, Transport

ECHO = "builtin.echo"
SLEEP = "builtin.sleep"
FOREACH = "pipeline.foreach"
QUIET_HOURS = "policy.quiet_hours"
MAX_SLEEP_SECONDS = 3600.0

_ECHO = ToolSpec(
    address=ECHO,
    transport=Transport.BUILTIN,
    input_schema={"type": "object"},
    output_schema={"type": "object"},
    timeout_seconds=5.0,
    description="Return the arguments unchanged.",
)

_SLEEP = ToolSpec(
    address=SLEEP,
    transport=Transport.BUILTIN,
    input_schema={
        "type": "object",
        "required": ["seconds"],
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": MAX_SLEEP_SECONDS}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["slept"],
        "properties": {"slept": {"type": "number", "minimum": 0}},
    },
    timeout_seconds=MAX_SLEEP_SECONDS + 5.0,
    description="Wait the given number of seconds.",
)

_FOREACH = ToolSpec(
    address=FOREACH,
    transport=Transport.BUILTIN,
    input_schema={
        "type": "object",
        "required": ["body"],
        "properties": {
            "items_path": {"type": "string", "minLength": 1},
            "items": {},
            "body": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "max_parallel": {"type": "integer", "minimum": 1},
        },
        "oneOf": [{"required": ["items_path"]}, {"required": ["items"]}],
        "additionalProperties": False,
    },
    output_schema={"type": "array", "items": {"type": "object"}},
    timeout_seconds=MAX_SLEEP_SECONDS,
    description="Run the body steps once per item; the results are a list, one object per item.",
)

_QUIET_HOURS = ToolSpec(
    address=QUIET_HOURS,
    transport=Transport.BUILTIN,
    input_schema={
        "type": "object",
        "properties": {"at": {"type": "string", "format": "date-time"}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["quiet", "next_allowed"],
        "properties": {
            "quiet": {"type": "boolean"},
            "next_allowed": {"type": "string", "format": "date-time"},
            "window": {"type": "string"},
        },
    },
    timeout_seconds=5.0,
    description="Whether the run's quiet hours hold now (or at 'at'), and when silenced "
    "steps may run: {quiet, next_allowed}.",
)

BUILTIN_TOOLS: Mapping[str, ToolSpec] = MappingProxyType(
    {spec.address: spec for spec in (_ECHO, _SLEEP, _FOREACH, _QUIET_HOURS)}
)


def call_builtin(address: str, args: Mapping[str, Any], *, sleep: Callable[[float], None]) -> Any:
    """Run ``builtin.echo`` or ``builtin.sleep``; anything else is a non-retryable ToolError."""
    if address == ECHO:
        return dict(args)
    if address == SLEEP:
        seconds = args.get("seconds")
        if (
            not isinstance(seconds, (int, float))
            or isinstance(seconds, bool)
            or not 0 <= seconds <= MAX_SLEEP_SECONDS
        ):
            raise ToolError(
                f"builtin.sleep needs 'seconds' between 0 and {MAX_SLEEP_SECONDS:g}",
                field="seconds",
            )
        sleep(float(seconds))
        return {"slept": seconds}
    if address == FOREACH:
        raise ToolError("pipeline.foreach is run by the pipeline executor, not called as a tool")
    if address == QUIET_HOURS:
        raise ToolError("policy.quiet_hours is answered by the worker from the run's rules")
    raise ToolError(f"no built-in tool {address!r}")
