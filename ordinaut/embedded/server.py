"""The base of both embedded servers: a child process owned by one object."""

from __future__ import annotations

import abc
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ordinaut.embedded.process import HOST, free_port, parent_death_signal, port_free, read_ports
from ordinaut.errors import ConfigError

_log = logging.getLogger("ordinaut.embedded")  # one logger for the whole package


class Server(abc.ABC):
    """A server process owned by this object: spawn, log tail, stop, context manager."""

    _name: str  # the server's name in messages
    _key: str  # its key in ports.json, and the stem of its default log file
    _stop_signals: tuple[signal.Signals, ...]  # clean shutdown first, then harsher ones

    def __init__(self, data_dir: Path, port: int | None, log_file: Path | None) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._fixed_port = port
        self._port = port if port is not None else self._pick_port()
        self._log_path = log_file or self._data_dir / f"{self._key}.log"
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1 (chosen at construction; kept unless taken before the
        first start, and kept by every later start: a restarted server keeps its URL)."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs as our child, else None."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def exit_code(self) -> int | None:
        """The server's exit status if it ended without :meth:`stop`; None otherwise."""
        return None if self._proc is None else self._proc.poll()

    def _pick_port(self) -> int:
        return free_port(read_ports(self._data_dir).get(self._key))

    def _claim_port(self) -> None:
        if port_free(self._port):
            return
        if self._fixed_port is not None:
            raise ConfigError(f"embedded {self._name}: port {self._port} on {HOST} is in use")
        self._port = self._pick_port()

    def _spawn(self, argv: list[str], cwd: Path, owner: tuple[int, int] | None = None) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed by stop()
        self._log_start = self._log.tell()
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=parent_death_signal(self._stop_signals[0]),
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )

    def _log_tail(self, lines: int = 3) -> str:
        try:
            with open(self._log_path, "rb") as fh:
                fh.seek(max(self._log_start, fh.seek(0, os.SEEK_END) - 4096))
                text = fh.read().decode(errors="replace")
        except OSError:
            return f"(no log at {self._log_path})"
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return f"log {self._log_path}: " + (" | ".join(tail) if tail else "(empty)")

    def _error(self, what: str) -> ConfigError:
        """The one-line error for a server that failed, ending with the tail of its log."""
        return ConfigError(f"embedded {self._name} {what} — {self._log_tail()}")

    def _launch(
        self,
        argv: list[str],
        *,
        cwd: Path,
        deadline: float,
        ready: Callable[[], bool],
        owner: tuple[int, int] | None = None,
    ) -> None:
        """Spawn the server and poll ``ready``; on any failure nothing is left running."""
        started = time.monotonic()
        self._spawn(argv, cwd, owner)
        assert self._proc is not None
        try:
            while not ready():
                code = self._proc.poll()
                if code is not None:
                    raise self._error(f"exited with code {code} while starting")
                if time.monotonic() > deadline:
                    raise self._error("did not accept connections in time")
                time.sleep(0.05)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        # clients were given this URL: a later start (a restart) must not move to another port
        self._fixed_port = self._port
        _log.info(
            "embedded %s ready on %s:%s (pid %s, %.1f s)",
            *(self._name, HOST, self._port, self._proc.pid, time.monotonic() - started),
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly, harder after ``timeout`` seconds; idempotent."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._terminate(proc, timeout)
                _log.info("embedded %s stopped (pid %s)", self._name, proc.pid)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _terminate(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        waits = [timeout] + [5.0] * (len(self._stop_signals) - 1)
        for sig, wait in zip(self._stop_signals, waits, strict=True):
            if proc.poll() is not None:
                return
            proc.send_signal(sig)  # a no-op once the child is reaped, which poll() does
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                _log.warning("embedded %s (pid %s) outlived %s", self._name, proc.pid, sig.name)
        proc.kill()
        proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @abc.abstractmethod
    def start(self, timeout: float = 60.0) -> str:
        """Start the server and wait until it answers; its URL."""
