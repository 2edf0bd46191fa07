"""Run a set of child processes as one: one combined log, restarts, ordered shutdown, no orphans.

Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
supervisor. On Linux each child also gets SIGTERM as its parent-death signal, so a
supervisor killed with SIGKILL leaves nothing running.

- **Restarts** (:meth:`Supervisor.supervise`): a child (or a watched server, such as an
  embedded PostgreSQL) that dies is started again after a backoff (:mod:`.restarts`), with
  one log line when it dies and one when it is back. Servers come first: a child waits for
  every server to be up again before it is restarted. A child's leftover processes (its
  group) are killed before it starts again. After repeated fast failures the supervisor
  gives up and says why; the caller then stops everything.
- **What the person sees**: every line goes to the log file (when one is given), prefixed
  with the time and the child's name. The terminal gets the same lines, except for the
  children named ``quiet`` (Celery's): their start-up output before their first log line
  (Celery's banner, the root-user warning) and any log record naming the root-user
  warning, which go to the file only, marked ``DEBUG``. A quiet child that dies before
  its first log line gets its held lines shown after all: they say why.
- **Shutdown** (:meth:`Supervisor.stop_all`): SIGTERM to each child's *main* process only,
  in reverse start order, then SIGKILL to the group of any child still running after its
  stop timeout. Only the main process: a Celery worker makes that a warm shutdown (its pool
  finishes or hands back its runs, see :mod:`ordinaut.runs.shutdown`); SIGTERM to the whole
  group would kill the pool processes under running tasks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Protocol

from ordinaut.cli.restarts import RestartPolicy, Restarts

_COLORS = ("36", "35", "33", "32", "34", "31")
# a log record's first line: Ordinaut's text format ("[2026-12-02 08:30:00,123: INFO/…]")
# or a JSON line; anything else continues the record before it (or is start-up output)
_RECORD = re.compile(r'^(\[\d{4}-\d{2}-\d{2} |\{"ts": )')
_HIDDEN_RECORDS = ("superuser privileges",)  # Celery's root-user warning
HELD_LINES = 300


class Watched(Protocol):
    """Something the supervisor keeps running: a :class:`Child`, or a server wrapped for it."""

    name: str

    def exit_code(self) -> int | None:
        """The exit status once it has died on its own; None while it runs."""

    def restart(self) -> str:
        """Start it again (blocking until it is ready); a few words on where it now runs."""


def describe_exit(code: int) -> str:
    """``exited with status 3`` or ``was killed by SIGKILL``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _pdeathsig() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


@dataclass
class Child:
    """One supervised process; ``stop_timeout`` overrides :meth:`Supervisor.stop_all`'s."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    stop_timeout: float | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    supervisor: Supervisor | None = field(default=None, repr=False)

    def exit_code(self) -> int | None:
        """The exit status once the process has ended; None while it runs."""
        return None if self.proc is None else self.proc.poll()

    def restart(self) -> str:
        """Kill what is left of the old process group, then start the child again."""
        assert self.supervisor is not None
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.supervisor.launch(self)
        assert self.proc is not None
        return f"pid {self.proc.pid}"


@dataclass
class _Watch:
    """The supervisor's state for one watched thing."""

    restarts: Restarts
    restart_at: float | None = None  # set while it is dead and waiting for its restart


class Supervisor:
    """Starts children, prefixes their output, restarts the dead, stops them all together."""

    def __init__(
        self,
        out: IO[str] | None = None,
        *,
        color: bool | None = None,
        policy: RestartPolicy | None = None,
        log_file: IO[str] | None = None,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.log_file = log_file
        self.quiet = quiet
        self.color = self.out.isatty() if color is None else color
        self.policy = policy or RestartPolicy()
        self._lock = threading.Lock()
        self._width = 6
        self._threads: list[threading.Thread] = []
        self._watches: dict[int, _Watch] = {}

    def log(self, name: str, line: str, *, shown: bool = True) -> None:
        """Write one line of the combined log (to the file only when not ``shown``)."""
        label = name.ljust(self._width)
        if self.color:
            index = sum(map(ord, name)) % len(_COLORS)
            label = f"\x1b[{_COLORS[index]}m{label}\x1b[0m"
        with self._lock:
            if self.log_file is not None:
                level = "" if shown else "DEBUG "
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
                self.log_file.write(f"{stamp} {level}{name.ljust(self._width)} | {line}\n")
                self.log_file.flush()
            if shown:
                self.out.write(f"{label} | {line}\n")
                self.out.flush()

    def start(self, child: Child) -> None:
        """Start ``child`` in its own process group, relay its output, and supervise it."""
        child.supervisor = self
        self.children.append(child)
        self.launch(child)

    def launch(self, child: Child) -> None:
        """Spawn ``child``'s process (again) and relay its output."""
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
        thread = threading.Thread(target=self._relay, args=(child, child.proc), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _relay(self, child: Child, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        quiet = child.name in self.quiet
        hiding, logged = quiet, False  # a quiet child's start-up output is hidden
        held: deque[str] = deque(maxlen=HELD_LINES)
        with proc.stdout:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if quiet and _RECORD.match(line):
                    logged = True
                    held.clear()
                    hiding = any(marker in line for marker in _HIDDEN_RECORDS)
                if hiding and not logged:
                    held.append(line)
                self.log(child.name, line, shown=not hiding)
        for line in held:  # it died before logging anything: its start-up output says why
            self.log(child.name, line)

    def supervise(
        self, stop: threading.Event, servers: Sequence[Watched] = (), poll: float = 0.2
    ) -> str | None:
        """Keep ``servers`` and the children running until ``stop`` is set (then None).

        Returns why it gave up when one of them failed too often, too fast. Call it from the
        thread that started the servers: their parent-death signal is tied to that thread.
        """
        while not stop.wait(poll):
            for server in servers:
                if (gave_up := self._check(server, stop, hold=False)) is not None:
                    return gave_up
            hold = any(server.exit_code() is not None for server in servers)
            for child in self.children:
                if (gave_up := self._check(child, stop, hold=hold)) is not None:
                    return gave_up
        return None

    def _check(self, unit: Watched, stop: threading.Event, *, hold: bool) -> str | None:
        """Notice a death, or restart what waited long enough (unless ``hold`` or stopping)."""
        if stop.is_set():
            return None
        watch = self._watches.setdefault(id(unit), _Watch(Restarts(self.policy)))
        now = time.monotonic()
        if watch.restart_at is None:
            code = unit.exit_code()
            if code is None:
                return None
            return self._failed(unit, watch, now, describe_exit(code))
        if now < watch.restart_at or hold:
            return None
        try:
            where = unit.restart()
        except Exception as exc:  # a server that does not come back counts as a failure
            reason = str(getattr(exc, "message", exc)) or type(exc).__name__
            return self._failed(unit, watch, time.monotonic(), f"did not restart ({reason})")
        watch.restart_at = None
        self.log("ordinaut", f"{unit.name} restarted ({where})")
        return None

    def _failed(self, unit: Watched, watch: _Watch, now: float, what: str) -> str | None:
        delay = watch.restarts.failed(now)
        if delay is None:
            return (
                f"{unit.name} {what}: it failed {watch.restarts.recent} times within "
                f"{self.policy.window:g} s, giving up"
            )
        watch.restart_at = now + delay
        self.log("ordinaut", f"{unit.name} {what}; restarting it in {delay:g} s")
        return None

    def stop_all(self, grace: float = 20.0) -> None:
        """SIGTERM each child's main process in reverse start order, wait, SIGKILL stragglers.

        Each child gets its own ``stop_timeout`` (else ``grace``) seconds from now.
        """
        started = time.monotonic()
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.proc.pid, signal.SIGTERM)
        for child in reversed(self.children):
            if child.proc is None:
                continue
            limit = child.stop_timeout if child.stop_timeout is not None else grace
            try:
                child.proc.wait(max(0.1, started + limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log("ordinaut", f"{child.name} did not stop in {limit:g}s: killing it")
            # whatever is left of its group (pool processes, a hung main process) goes now
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
        for thread in self._threads:
            thread.join(timeout=2)
