"""The ``llm`` built-in tools: one OpenAI-compatible chat completion per call.

``llm.chat`` and its per-use aliases ``llm.plan``, ``llm.rewrite`` and ``llm.summarize`` are
the same tool. Input ``{"instruction": str, "input"?: any, "system"?: str, "model"?: str,
"temperature"?: number, "max_tokens"?: int}``; the user message is the instruction, followed
by ``input`` as JSON when given. Output ``{"text": str, "usage": {...}, "model": str}``.

It speaks ``POST {base_url}/chat/completions`` (OpenAI, Ollama, vLLM, LM Studio, the demo
server), configured by ``ORDINAUT_LLM_BASE_URL`` (e.g. ``https://api.openai.com/v1``),
``ORDINAUT_LLM_MODEL`` and, when the server wants one, ``ORDINAUT_LLM_API_KEY`` (sent as a
bearer token, never logged). Failures follow :mod:`ordinaut.tools.http`: 408/429/5xx and
timeouts are retryable, other 4xx and a missing setting are not; the base URL is reached
only where the egress policy allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ordinaut.egress import EgressPolicy
from ordinaut.errors import ToolError
from ordinaut.tools.http import post_json
from ordinaut.tools.spec import ToolSpec, Transport

ADDRESSES = ("llm.chat", "llm.plan", "llm.rewrite", "llm.summarize")
TIMEOUT_SECONDS = 120.0

INPUT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["instruction"],
    "properties": {
        "instruction": {"type": "string", "minLength": 1, "maxLength": 100_000},
        "input": {},
        "system": {"type": "string", "maxLength": 100_000},
        "model": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}
OUTPUT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["text", "usage"],
    "properties": {
        "text": {"type": "string"},
        "usage": {"type": "object"},
        "model": {"type": "string"},
    },
}

LLM_TOOLS: Mapping[str, ToolSpec] = MappingProxyType(
    {
        address: ToolSpec(
            address=address,
            transport=Transport.BUILTIN,
            input_schema=INPUT_SCHEMA,
            output_schema=OUTPUT_SCHEMA,
            timeout_seconds=TIMEOUT_SECONDS,
            description="Ask the configured chat model (OpenAI-compatible API); returns its text.",
        )
        for address in ADDRESSES
    }
)


@dataclass(frozen=True)
class LlmConfig:
    """Where the chat model lives; ``None`` fields are unset variables."""

    base_url: str | None
    model: str | None
    api_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LlmConfig:
        """Read ``ORDINAUT_LLM_BASE_URL``, ``ORDINAUT_LLM_MODEL``, ``ORDINAUT_LLM_API_KEY``."""
        return cls(
            base_url=environ.get("ORDINAUT_LLM_BASE_URL") or None,
            model=environ.get("ORDINAUT_LLM_MODEL") or None,
            api_key=environ.get("ORDINAUT_LLM_API_KEY") or None,
        )


def request_body(args: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The chat-completions request for the tool's arguments."""
    user = args["instruction"]
    if "input" in args:
        user += "\n\nInput:\n" + json.dumps(args["input"], ensure_ascii=False, indent=1)
    messages = [{"role": "user", "content": user}]
    if args.get("system"):
        messages.insert(0, {"role": "system", "content": args["system"]})
    body: dict[str, Any] = {"model": args.get("model", model), "messages": messages}
    for name in ("temperature", "max_tokens"):
        if name in args:
            body[name] = args[name]
    return body


def parse_answer(answer: Any) -> dict[str, Any]:
    """``{"text", "usage", "model"}`` from a chat-completions answer (non-retryable if odd)."""
    try:
        text = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ToolError(
            "the chat answer has no choices[0].message.content", field="output"
        ) from None
    if not isinstance(text, str):
        raise ToolError("the chat answer's content is not text", field="output")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    out: dict[str, Any] = {"text": text, "usage": usage}
    if isinstance(answer.get("model"), str):
        out["model"] = answer["model"]
    return out


def call_llm(
    config: LlmConfig,
    args: Mapping[str, Any],
    *,
    timeout: float,
    clock: Callable[[], datetime],
    policy: EgressPolicy,
) -> dict[str, Any]:
    """Ask the configured model; returns ``{"text", "usage", "model"}``."""
    if config.base_url is None:
        raise ToolError(
            "no chat model is configured: set ORDINAUT_LLM_BASE_URL (and ORDINAUT_LLM_MODEL) "
            "for the worker",
            field="ORDINAUT_LLM_BASE_URL",
        )
    model = args.get("model") or config.model
    if model is None:
        raise ToolError(
            "no model named: set ORDINAUT_LLM_MODEL for the worker or pass 'model'",
            field="ORDINAUT_LLM_MODEL",
        )
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    url = config.base_url.rstrip("/") + "/chat/completions"
    answer = post_json(
        url, request_body(args, model), headers=headers, timeout=timeout, clock=clock, policy=policy
    )
    return parse_answer(answer)
