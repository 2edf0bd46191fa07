"""The soak's HTTP tool server: a side effect per Idempotency-Key, faults, a ledger of calls.

``POST /effect`` with the body a chaos task's step sends (``task``, ``occurrence``, ``step``,
``ckey``: the task's concurrency key or null) and the step's ``Idempotency-Key`` header:

* a key already done is **replayed**: the stored answer, no new effect;
* otherwise, on a seeded draw: **error** (HTTP 503, no effect), **timeout** (the effect is
  done and stored, then the answer waits past the tool's timeout: the caller sees a timeout
  and retries with the same key), or **ok** (the effect is done after a short pause).

Every call is logged (:class:`Call`). While a call for a concurrency key is in progress (up
to its effect) it counts as active for that key; the most ever active per key is kept, so the
audit can compare it with the key's limit as seen from outside Ordinaut.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """One request as the server saw it."""

    at: float  # wall-clock seconds (time.time()) when it arrived
    key: str | None
    task: str
    occurrence: str
    step: str
    ckey: str | None
    outcome: str  # "new" (effect done), "replay", "error", "no-key"


@dataclass(frozen=True)
class Faults:
    """Probabilities of the injected failures, and the pauses."""

    error: float = 0.05
    timeout: float = 0.01
    pause: tuple[float, float] = (0.005, 0.04)  # seconds an ok call takes
    hang: float = 3.0  # seconds a "timeout" answer waits (the tool's timeout is shorter)


class ToolServer:
    """A threaded HTTP server on 127.0.0.1; :meth:`start`, :meth:`stop`, then read the ledger."""

    def __init__(self, seed: int, faults: Faults = Faults()) -> None:
        self.faults = faults
        self.calls: list[Call] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._server = _Quiet(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/effect"

    def start(self) -> ToolServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """The status, answer and delay for one call; records it."""
        ckey = body.get("ckey") or None
        with self._lock:

            def log(outcome: str) -> None:
                self.calls.append(
                    Call(
                        time.time(),
                        key,
                        str(body.get("task")),
                        str(body.get("occurrence")),
                        str(body.get("step")),
                        ckey,
                        outcome,
                    )
                )

            if key is None:
                log("no-key")
                return 400, {"error": "no Idempotency-Key"}, 0.0
            if key in self.done:
                log("replay")
                return 200, self.done[key], 0.0
            draw = self._random.random()
            pause = self._random.uniform(*self.faults.pause)
            if draw < self.faults.error:
                log("error")
                return 503, {"error": "injected"}, 0.0
            if ckey is not None:
                self.active[ckey] = self.active.get(ckey, 0) + 1
                self.max_active[ckey] = max(self.max_active.get(ckey, 0), self.active[ckey])
        time.sleep(pause)  # the call is in progress: it counts against its key
        with self._lock:
            if ckey is not None:
                self.active[ckey] -= 1
            answer = {"ok": True, "key": key}
            self.done[key] = answer
            log("new")
        hang = self.faults.hang if draw < self.faults.error + self.faults.timeout else 0.0
        return 200, answer, hang


class _Quiet(ThreadingHTTPServer):
    """A killed worker resets its kept-alive connection: expected here, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _handler(server: ToolServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            status, answer, hang = server.handle(self.headers.get("Idempotency-Key"), body)
            if hang:
                time.sleep(hang)
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the caller gave up (its timeout): the effect stands

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
