"""Which tools exist and how to call them: the built-ins plus the catalog in Postgres."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ordinaut.errors import ToolError
from ordinaut.pipeline.executor import ToolCall
from ordinaut.tools.builtin import BUILTIN_TOOLS, call_builtin
from ordinaut.tools.spec import ToolSpec, Transport


def load_tools(conn: Connection) -> Mapping[str, ToolSpec]:
    """Every tool a pipeline may use, by address."""
    del conn  # the catalog table arrives with the tools issue; built-ins need no query
    return dict(BUILTIN_TOOLS)


class ToolRunner:
    """Calls a tool by its transport; the only place tool I/O happens."""

    def __init__(
        self,
        tools: Mapping[str, ToolSpec],
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.tools, self.sleep, self.clock = tools, sleep, clock

    def call(self, call: ToolCall, *, timeout: float) -> Any:
        """Run ``call`` within ``timeout`` seconds; errors are ToolErrors with retry intent."""
        spec = self.tools.get(call.address)
        if spec is None:
            raise ToolError(f"unknown tool {call.address!r}", retryable=False)
        if spec.transport is Transport.BUILTIN:
            return call_builtin(call.address, call.args, sleep=self._bounded_sleep(timeout))
        raise ToolError(
            f"transport {spec.transport.value!r} is not available in this build", retryable=False
        )

    def _bounded_sleep(self, timeout: float) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            if seconds > timeout:
                self.sleep(timeout)
                raise ToolError(f"timed out after {timeout:g}s", retryable=True)
            self.sleep(seconds)

        return sleep
