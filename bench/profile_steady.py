"""Where the CPU of a steady run goes: py-spy samples of every Ordinaut process under load.

Starts the stack of :mod:`bench.throughput` (beat, control worker, runs worker) on its own
database and namespace, offers ``--rate`` one-step runs a second (or ``--burst`` runs due at
one instant), and records each process (the runs worker's pool processes included) with
``py-spy record`` for ``--seconds`` seconds. Prints, per process, the CPU it spent (psutil)
and the functions its samples fell in (inclusive, then own), as shares of its samples.
Idle samples (a thread asleep on a socket or a lock) are left out, but psycopg's wait for
PostgreSQL's answer counts as active: database round trips show with their wall time.

Needs py-spy (``pip install py-spy``; not a dependency of Ordinaut) and, to attach, the
right to ptrace the processes (root, or ``kernel.yama.ptrace_scope = 0``).

Run: ``DATABASE_URL=… REDIS_URL=… python -m bench.profile_steady [--rate 50] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from bench.common import Bench, load_average, wait_for
from bench.throughput import ECHO, _finished, _ordinaut


def _record(pids: dict[int, str], seconds: float, out: Path) -> dict[int, Path]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    files, procs = {}, []
    for pid in pids:
        files[pid] = out / f"{pid}.txt"
        argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
        argv += ["--format", "raw", "--rate", "200", "--nonblocking", "-o", str(files[pid])]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for proc in procs:
        proc.wait(seconds + 60)
    return files


def _summary(path: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, [(function, inclusive samples)], [(function, own samples)]) of one py-spy
    raw (collapsed) file; frames in more than 90 % of the samples (the process's main loop)
    are left out of the inclusive list."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    if not path.exists():
        return 0, [], []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        seen = set()
        name = ""
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
        own[name] += n
    body = [(f, n) for f, n in inclusive.most_common() if n <= 0.9 * total]
    return total, body[:top], own.most_common(top // 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="offered runs/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="recording length")
    parser.add_argument("--top", type=int, default=30, help="functions shown per process")
    parser.add_argument(
        "--burst", type=int, default=0, help="instead: this many runs due at one instant"
    )
    args = parser.parse_args(argv)
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        print("set DATABASE_URL and REDIS_URL (servers to create a bench database on)")
        return 2
    bench = Bench(database_url, redis_url)
    try:
        _ordinaut(bench)
        count = args.burst or int(args.rate * (args.seconds + 15))
        first = datetime.now(UTC) + timedelta(seconds=5)
        bench.insert_once_tasks(first, count, 0.0 if args.burst else 1.0 / args.rate, ECHO)
        lead = 0 if args.burst else 3  # a burst is recorded from its due instant
        wait_for(lambda: datetime.now(UTC) >= first + timedelta(seconds=lead), 20, bench)
        pids: dict[int, str] = {}
        for proc in bench.procs:
            top = psutil.Process(proc.proc.pid)
            pids[top.pid] = proc.name
            for child in top.children(recursive=True):
                pids[child.pid] = f"{proc.name} pool {child.pid}"
        meter = bench.cpu().start()
        with tempfile.TemporaryDirectory() as tmp:
            files = _record(pids, args.seconds, Path(tmp))
            meter.stop()
            runs = _finished(bench) if args.burst else args.rate * args.seconds
            what = f"burst of {args.burst}" if args.burst else f"{args.rate:g} runs/s"
            print(f"# {what}, {args.seconds:g} s, {runs:g} runs; {load_average()}")
            print(f"# CPU ms per run by process: {meter.split(runs)}")
            for pid, name in pids.items():
                total, rows, own = _summary(files[pid], args.top)
                print(f"\n## {name} (pid {pid}): {total} samples at 200/s")
                for function, n in rows:
                    print(f"{100 * n / max(total, 1):5.1f}%  {function}")
                print("  own time:")
                for function, n in own:
                    print(f"{100 * n / max(total, 1):5.1f}%  {function}")
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
