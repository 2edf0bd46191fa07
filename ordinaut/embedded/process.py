"""What the embedded servers share below the server itself: ports, pids, parent death.

Ports of the last start are kept in ``data_dir/ports.json`` so restarts keep their URLs. The
pid checks read /proc where there is one (Linux) and assume the worst where there is not.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
HAS_PROC = Path("/proc/self/stat").exists()
_PR_SET_PDEATHSIG = 1


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else a free port the OS picks."""
    if preferred is not None and port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 right now."""
    # SO_REUSEADDR as the servers set it, so TIME_WAIT leftovers of a stopped server do not count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def read_ports(data_dir: Path) -> dict[str, int]:
    """The ports recorded in ``data_dir/ports.json`` by name; empty when unreadable."""
    try:
        raw = json.loads((data_dir / "ports.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, int)}


def record_port(data_dir: Path, name: str, port: int) -> None:
    """Record ``name``'s port in ``data_dir/ports.json`` (replaced atomically)."""
    ports = read_ports(data_dir)
    if ports.get(name) == port:
        return
    ports[name] = port
    tmp = data_dir / f"ports.json.{os.getpid()}"
    tmp.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
    tmp.replace(data_dir / "ports.json")


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies, dead but not yet reaped, are not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not HAS_PROC:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def running_pid(pid_file: Path, program: str, directory: Path) -> int | None:
    """The pid in ``pid_file`` if it is alive and is ``program`` working in ``directory``.

    Both servers chdir to their data folder. What cannot be checked (no /proc, another user's
    process) is assumed to match, so doubt ends in a refusal, never in two servers on one folder.
    """
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not pid_alive(pid):
        return None
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/comm").read_text().strip() != program:
            return None  # the pid was reused by another program
    with contextlib.suppress(OSError):
        if os.readlink(f"/proc/{pid}/cwd") != str(directory.resolve()):
            return None  # the pid was reused by the same program elsewhere
    return pid


def processes_in(directory: Path, program: str) -> list[int]:
    """Live ``program`` processes (not this one) working in ``directory``; Linux only."""
    target = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (
                os.readlink(entry / "cwd") == target
                and (entry / "comm").read_text().strip() == program
            ):
                found.append(int(entry.name))
    return found


def parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when its parent thread exits (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: do not start at all
            os._exit(1)

    return preexec
