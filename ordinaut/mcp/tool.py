"""What one MCP tool is: a name, text for a language model, argument and result models, a call.

A :class:`McpTool` is declarative. Its input schema is its argument model's JSON Schema (with
``help`` filling field descriptions the service models leave out, and the ``example`` as the
schema's ``examples``); its output schema is its result model's. ``call`` receives the
service, the calling agent and the validated arguments (plus, for a ``keyed`` tool, the
caller's idempotency key or None) and returns the result (a model instance or a dict the
result model accepts); it must be a thin adapter over one ``Service`` method, since the
service does every check (scopes included).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import mcp.types as types
from pydantic import BaseModel

from ordinaut.mcp.schemas import rendered_schema
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service

Call = Callable[..., Any]
"""``(service, principal, arguments)``, or ``(…, idempotency_key)`` for a keyed tool."""


@dataclass(frozen=True)
class McpTool:
    """One Ordinaut operation as an MCP tool."""

    name: str
    title: str
    description: str
    args: type[BaseModel]
    result: type[BaseModel]
    call: Call
    example: dict[str, Any] = field(default_factory=dict)
    help: dict[str, str] = field(default_factory=dict)
    hide: frozenset[str] = frozenset()
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    keyed: bool = False

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        schema = rendered_schema(self.args, mode="validation", help=self.help, hide=self.hide)
        schema.pop("description", None)  # the tool's description says it for a model
        if self.example:
            schema["examples"] = [self.example]
        return schema

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        return rendered_schema(self.result, mode="serialization")

    def listing(self) -> types.Tool:
        """The ``tools/list`` entry."""
        text = self.description.strip()
        if self.example:
            text += "\n\nExample arguments: " + json.dumps(self.example, ensure_ascii=False)
        return types.Tool(
            name=self.name,
            title=self.title,
            description=text,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=self.destructive,
                idempotent_hint=self.idempotent,
                open_world_hint=False,
            ),
        )

    def run(
        self, service: Service, principal: Principal, arguments: BaseModel, key: str | None
    ) -> dict[str, Any]:
        """Call the service and return the structured result as JSON-ready data."""
        if self.keyed:
            out = self.call(service, principal, arguments, key)
        else:
            out = self.call(service, principal, arguments)
        model = out if isinstance(out, self.result) else self.result.model_validate(out)
        return model.model_dump(mode="json")
