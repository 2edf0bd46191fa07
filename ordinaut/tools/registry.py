"""Which tools exist and how to call them: the built-ins plus the catalog in Postgres.

:func:`load_tools` merges the built-ins (``builtin.*``, ``pipeline.foreach``, ``llm.*``) with
the registered ``http`` and ``mcp`` tools. :class:`ToolRunner` is the only place tool I/O
happens: it routes a :class:`~ordinaut.tools.spec.ToolCall` to its transport
(:mod:`~ordinaut.tools.http`, :mod:`~ordinaut.tools.mcp_pool`, :mod:`~ordinaut.tools.llm`,
:mod:`~ordinaut.tools.builtin`) and lets only ``ToolError`` (with its retry intent) out.
Secrets and the LLM settings are read from ``environ`` (default: the process environment)
at call time. Every network call obeys ``egress``, the egress policy (default: the built-in
guards alone; a worker passes the policy of its Settings).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.egress import DEFAULT_POLICY, EgressPolicy
from ordinaut.errors import ToolError
from ordinaut.tools import catalog, http, llm, mcp_pool
from ordinaut.tools.builtin import BUILTIN_TOOLS, call_builtin
from ordinaut.tools.spec import ToolCall, ToolSpec, Transport

RESERVED_SERVERS = frozenset({"builtin", "pipeline", "llm"})


def builtin_tools() -> dict[str, ToolSpec]:
    """The tools that ship with Ordinaut, by address."""
    return {**BUILTIN_TOOLS, **llm.LLM_TOOLS}


def load_tools(conn: Connection) -> Mapping[str, ToolSpec]:
    """Every tool a pipeline may use, by address (built-ins win over the catalog)."""
    return {**catalog.load_catalog(conn), **builtin_tools()}


def tools_for_payload(conn: Connection, payload: Any) -> Mapping[str, ToolSpec]:
    """The tools a payload may use: the catalog is read only when a step needs it."""
    builtins = builtin_tools()
    if all(address in builtins for address in _addresses(payload)):
        return builtins
    return load_tools(conn)


def _addresses(payload: Any) -> Iterator[str | None]:
    """Every ``uses`` in a raw payload, foreach bodies included; None where one is malformed
    (shape is not checked here: the full catalog is loaded and validation names the field)."""
    steps = payload.get("pipeline") if isinstance(payload, dict) else None
    stack = [steps]
    while stack:
        items = stack.pop()
        if not isinstance(items, list):
            yield None  # malformed: let the full catalog and validation speak
            continue
        for step in items:
            if not isinstance(step, dict):
                yield None
                continue
            uses = step.get("uses")
            yield uses if isinstance(uses, str) else None
            body = step.get("with", {}).get("body") if isinstance(step.get("with"), dict) else None
            if body is not None:
                stack.append(body)


class ToolRunner:
    """Calls a tool by its transport; the only place tool I/O happens."""

    def __init__(
        self,
        tools: Mapping[str, ToolSpec],
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        environ: Mapping[str, str] | None = None,
        pool: mcp_pool.SessionPool | None = None,
        egress: EgressPolicy = DEFAULT_POLICY,
    ) -> None:
        self.tools, self.sleep, self.clock = tools, sleep, clock
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.pool = pool
        self.egress = egress

    def call(self, call: ToolCall, *, timeout: float) -> Any:
        """Run ``call`` within ``timeout`` seconds; errors are ToolErrors with retry intent."""
        spec = self.tools.get(call.address)
        if spec is None:
            raise ToolError(f"unknown tool {call.address!r}", retryable=False)
        if spec.transport is Transport.HTTP:
            return http.call_http(
                spec,
                call.args,
                idempotency_key=call.idempotency_key,
                timeout=timeout,
                environ=self.environ,
                clock=self.clock,
                policy=self.egress,
            )
        if spec.transport is Transport.MCP:
            if spec.mcp is None or spec.remote_name is None:
                raise ToolError(f"MCP server {spec.server!r} of {spec.address!r} is not configured")
            return (self.pool or mcp_pool.shared()).call(
                spec.mcp,
                spec.remote_name,
                dict(call.args),
                key=call.idempotency_key,
                timeout=timeout,
                environ=self.environ,
                policy=self.egress,
            )
        if call.address in llm.LLM_TOOLS:
            config = llm.LlmConfig.from_env(self.environ)
            return llm.call_llm(
                config, call.args, timeout=timeout, clock=self.clock, policy=self.egress
            )
        return call_builtin(call.address, call.args, sleep=self._bounded_sleep(timeout))

    def _bounded_sleep(self, timeout: float) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            if seconds > timeout:
                self.sleep(timeout)
                raise ToolError(f"timed out after {timeout:g}s", retryable=True)
            self.sleep(seconds)

        return sleep
