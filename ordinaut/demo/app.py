"""The demo tool server: one loopback ASGI app serving the demo tools over HTTP and MCP.

Routes (all JSON):

* ``POST /tools/{toolset}/{name}``: call a demo tool; the body is its arguments. 200 with
  the output, 422 ``{"error": …}`` for arguments the tool refuses. ``Idempotency-Key`` is
  honoured by the senders.
* ``POST /tools/faults/respond``: a failure-injection tool for trying retries. Body:
  ``fail_with`` (HTTP status), ``fail_times`` (default 1: how many calls per
  ``Idempotency-Key`` fail), ``retry_after`` (sent as ``Retry-After``), ``delay_seconds``
  (answer late), ``output`` (the 200 answer; default ``{"ok": true, "calls": n}``).
* ``/mcp``: the same tools over MCP streamable HTTP (:mod:`ordinaut.demo.mcp_server`).
* ``POST /v1/chat/completions``: an OpenAI-compatible chat answer whose text is a
  deterministic summary of the last user message (so the tour needs no model).
* ``GET /demo/sent``: what the senders recorded; ``GET /demo/requests``: the last 500 tool
  requests over HTTP (path, ``Idempotency-Key``, ``Authorization``, body), for checking what
  Ordinaut sent. It is a loopback demo: it shows headers as received.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordinaut.demo.mcp_server import build_server
from ordinaut.demo.tools import BY_ADDRESS, DemoError, DemoState
from ordinaut.tools.spec import first_violation

DEFAULT_PORT = 8765
HOST = "127.0.0.1"


class DemoApp:
    """The demo server's state and routes; ``app`` is the ASGI application."""

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self.state = DemoState()
        self.requests: deque[dict[str, Any]] = deque(maxlen=500)
        self.fault_calls: Counter[str] = Counter()
        routes = [
            Route("/tools/faults/respond", self.faults, methods=["POST"]),
            Route("/tools/{toolset}/{name}", self.call_tool, methods=["POST"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/demo/sent", self.sent, methods=["GET"]),
            Route("/demo/requests", self.requests_seen, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ]
        self.app: Starlette = build_server(self.state).streamable_http_app(
            streamable_http_path="/mcp", custom_starlette_routes=routes
        )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.requests.append(
            {
                "path": request.url.path,
                "idempotency_key": request.headers.get("idempotency-key"),
                "authorization": request.headers.get("authorization"),
                "body": body,
            }
        )
        return body

    async def call_tool(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        address = f"{request.path_params['toolset']}.{request.path_params['name']}"
        tool = BY_ADDRESS.get(address)
        if tool is None:
            return JSONResponse({"error": f"no demo tool {address!r}"}, status_code=404)
        violation = first_violation(body, tool.input_schema)
        if violation is not None:
            return JSONResponse({"error": f"invalid arguments: {violation}"}, status_code=422)
        try:
            output = tool.fn(self.state, body, request.headers.get("idempotency-key"))
        except DemoError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse(output)

    async def faults(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=422)
        key = request.headers.get("idempotency-key") or ""
        self.fault_calls[key] += 1
        calls = self.fault_calls[key]
        await anyio.sleep(float(body.get("delay_seconds", 0)))
        status = body.get("fail_with")
        if isinstance(status, int) and calls <= int(body.get("fail_times", 1)):
            headers = {}
            if body.get("retry_after") is not None:
                headers["Retry-After"] = str(body["retry_after"])
            error = {"error": f"failing as asked ({status}), call {calls}"}
            return JSONResponse(error, status_code=status, headers=headers)
        return JSONResponse(body.get("output", {"ok": True, "calls": calls}))

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        messages = body.get("messages") or []
        prompt = next(
            (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        text = summarize(prompt)
        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
        completion_tokens = len(text.split())
        return JSONResponse(
            {
                "id": "chatcmpl-demo-" + hashlib.sha256(prompt.encode()).hexdigest()[:12],
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "demo"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def sent(self, request: Request) -> JSONResponse:
        with self.state.lock:
            return JSONResponse({"sent": list(self.state.sent)})

    async def requests_seen(self, request: Request) -> JSONResponse:
        return JSONResponse({"requests": list(self.requests)})

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})


def _text(content: Any) -> str:
    """The text of a chat message content (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def summarize(prompt: str, *, words: int = 60, chars: int = 1000) -> str:
    """A deterministic stand-in for a model's answer: a digest and the prompt's beginning."""
    split = prompt.split()
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    head = " ".join(split[:words])
    if len(split) > words or len(head) > chars:
        head = head[:chars] + " …"
    return f"Demo summary ({len(split)} words, #{digest}): {head}"


def serve(port: int = DEFAULT_PORT) -> None:
    """Serve the demo on 127.0.0.1:``port`` until interrupted."""
    uvicorn.run(DemoApp(port).app, host=HOST, port=port, log_level="warning")


@contextlib.contextmanager
def running(port: int) -> Iterator[DemoApp]:
    """Serve a fresh demo on 127.0.0.1:``port`` from a background thread (for tests, embedding)."""
    demo = DemoApp(port)
    server = uvicorn.Server(uvicorn.Config(demo.app, host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"demo-tools-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo tool server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield demo
    finally:
        server.should_exit = True
        thread.join(10)
