"""Run a set of child processes as one: one combined log, ordered shutdown, no orphans.

Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in reverse start order (SIGTERM, then SIGKILL
after a grace period). On Linux each child also gets SIGTERM as its parent-death signal, so
a supervisor killed with SIGKILL leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

_COLORS = ("36", "35", "33", "32", "34", "31")


def _pdeathsig() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class Supervisor:
    """Starts children, prefixes their output, stops them all together."""

    def __init__(self, out: IO[str] | None = None, *, color: bool | None = None) -> None:
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self._lock = threading.Lock()
        self._width = 6
        self._threads: list[threading.Thread] = []

    def log(self, name: str, line: str) -> None:
        """Write one line of the combined log."""
        label = name.ljust(self._width)
        if self.color:
            index = sum(map(ord, name)) % len(_COLORS)
            label = f"\x1b[{_COLORS[index]}m{label}\x1b[0m"
        with self._lock:
            self.out.write(f"{label} | {line}\n")
            self.out.flush()

    def start(self, child: Child) -> None:
        """Start ``child`` in its own process group and relay its output."""
        self._width = max(self._width, len(child.name))
        child.proc = subprocess.Popen(
            list(child.argv),
            env=dict(child.env) if child.env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_pdeathsig(),
        )
        self.children.append(child)
        thread = threading.Thread(target=self._relay, args=(child,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in child.proc.stdout:
            self.log(child.name, raw.decode(errors="replace").rstrip())

    def wait_any(self, stop: threading.Event, poll: float = 0.2) -> Child | None:
        """Block until a child exits (returned) or ``stop`` is set (None)."""
        while not stop.wait(poll):
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    return child
        return None

    def stop_all(self, grace: float = 20.0) -> None:
        """SIGTERM every child in reverse start order, wait, SIGKILL stragglers."""
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log("ordinaut", f"{child.name} did not stop in {grace:g}s: killing it")
                self._signal(child, signal.SIGKILL)
                child.proc.wait()
        for thread in self._threads:
            thread.join(timeout=2)

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, sig)
