"""One benchmark report: every bench in ``bench/`` and the peers, side by side, as Markdown.

``python -m bench.run_all [--out BENCHMARKS.md] [--repeat 3] [--runs 5000] [--rate 50]
[--seconds 20] [--chaos-minutes 1] [--skip PART]`` on the servers in ``DATABASE_URL`` /
``REDIS_URL`` (each part makes its own database and Redis namespace; the chaos soak starts
its own servers); the median of ``--repeat`` rounds is reported.

Repeats are rounds: each round measures every system once, so the shared machine's load
changes hit all of them alike. Parts:

- ``ordinaut``: burn-down of ``--runs`` one-step runs; steady lag at ``--rate`` runs/s, on
  a quiet machine and beside a CPU hog; the idle stack — each with CPU and commits per run
  (:mod:`bench.throughput` (a), (b), (h), (d)), against the figures recorded before issue 18
  (``bench/results/before-issue-18.json``);
- ``celery``: plain Celery on the same broker, queue and worker settings — ``--runs`` no-op
  tasks (:mod:`bench.throughput` (c)), its CPU per task at ``--rate`` tasks/s ((e): the
  floor under every Ordinaut run) and its beat's own lateness for an every-second entry
  (each start after the previous one plus a second; beat does not say when it meant to fire);
- ``procrastinate``: ``--runs`` no-op jobs burn-down and ``schedule_at`` lag at ``--rate``
  jobs/s, in a virtualenv this script creates (``~/.cache/ordinaut-bench``), so procrastinate
  is no dependency of Ordinaut (:mod:`bench.procrastinate_peer`);
- ``peers``: a bare ``SELECT … FOR UPDATE SKIP LOCKED`` loop (dispatch ceiling) and raw
  pipelined XADD (event ceiling) (:mod:`bench.peers`);
- ``scale``, ``api``, ``agenda``, ``metrics``, ``events``, ``fairness``, ``recurrence``: the
  other benches of ``bench/`` at sizes that fit the budget, quoted as printed with their
  commands;
- ``profile``: where the time of a steady and of a burst run goes, by process and function
  (:mod:`bench.profile_steady`, py-spy: ``pip install -e '.[bench]'``; skipped without it);
- ``chaos``: a ``--chaos-minutes`` soak (:mod:`bench.chaos`), and the last 10-minute soak's
  report as recorded in ``bench/results/chaos-10min.txt`` (it takes 12 minutes: run it with
  ``python -m bench.chaos --minutes 10 --seed 1 > bench/results/chaos-10min.txt``).

The whole report takes about 20 minutes on 2 cores with the defaults.

The report goes to ``--out`` (rewritten whole): machine, date, load averages, each figure with
its command, medians, ratios against the targets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

from bench import peers, throughput
from bench.common import STAMPS, Bench, _admin_conninfo, load_average, percentile

QUOTED = (
    ("scale", ["-m", "bench.scale", "--tasks", "20000", "--burst", "5000"]),
    ("api", ["-m", "bench.api_latency", "--requests", "500"]),
    ("agenda", ["-m", "bench.agenda", "--tasks", "2000"]),
    ("metrics", ["-m", "bench.metrics_scrape", "--runs", "50000"]),
    ("events", ["-m", "bench.events", "--outbox", "10000", "--seconds", "10"]),
    ("fairness", ["-m", "bench.fairness", "--backlog", "1000"]),
    ("recurrence", ["-m", "bench.recurrence_cost"]),
)
# where the time goes, by function (py-spy: ``pip install -e '.[bench]'``)
PROFILES = (
    ["-m", "bench.profile_steady", "--rate", "50", "--seconds", "15", "--top", "14"],
    ["-m", "bench.profile_steady", "--burst", "5000", "--seconds", "8", "--top", "14"],
)
PARTS = (
    "ordinaut",
    "celery",
    "procrastinate",
    "peers",
    "profile",
    *(p for p, _ in QUOTED),
    "chaos",
)
RESULTS = Path(__file__).with_name("results")
BEFORE_18 = RESULTS / "before-issue-18.json"
CHAOS_10 = RESULTS / "chaos-10min.txt"
VENV = Path.home() / ".cache" / "ordinaut-bench" / "procrastinate"
PROCRASTINATE = "procrastinate>=3,<4"


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def once(part: Callable[[], dict[str, Any]], label: str) -> dict[str, Any]:
    """One measurement, with the load average after it; printed as it comes."""
    started = time.monotonic()
    result = part()
    result["load"] = load_average()
    print(f"  {label}: {result} ({time.monotonic() - started:.0f} s)", flush=True)
    return result


def celery_beat_lag(database_url: str, redis_url: str, seconds: float) -> dict[str, Any]:
    """Plain Celery beat with one every-second entry: how late each start comes (ms)."""
    bench = Bench(database_url, redis_url)
    try:
        bench.extra_env["BENCH_STAMP_EVERY"] = "1"
        bench.start_worker("plain", "runs", app="bench.common")
        schedule = str(bench.log_dir / "celerybeat-schedule")
        bench.celery(
            "plain-beat",
            "beat",
            "-s",
            schedule,
            "--loglevel",
            "WARNING",
            "--pidfile=",
            app="bench.common",
        )
        time.sleep(seconds + 8)
        bench.check_alive()
        stamps = [
            float(s) for s in bench.redis.lrange(f"{bench.settings.namespace}:{STAMPS}", 0, -1)
        ]
        late = [(b - a - 1.0) * 1000 for a, b in itertools.pairwise(stamps)]
        return {
            "fires": len(stamps),
            "p50_ms": percentile(late, 50),
            "p99_ms": percentile(late, 99),
        }
    finally:
        bench.close()


def procrastinate(database_url: str, jobs: int, rate: float, seconds: float) -> dict[str, Any]:
    """procrastinate's figures, in its own virtualenv on a database of its own."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PROCRASTINATE, "psycopg[binary]"],
            check=True,
        )
    admin = _admin_conninfo(database_url)
    name = f"ordinaut_peer_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        script = Path(__file__).with_name("procrastinate_peer.py")
        done = subprocess.run(
            [
                str(python),
                str(script),
                admin.rsplit("/", 1)[0] + f"/{name}",
                str(jobs),
                str(rate),
                str(seconds),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def quoted(argv: list[str], timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    return (
        done.stdout
        + (f"\n(exit {done.returncode}) {done.stderr[-2000:]}" if done.returncode else "")
    ).strip()


def machine(database_url: str, redis_url: str) -> list[str]:
    with psycopg.connect(_admin_conninfo(database_url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    client = redis.Redis.from_url(redis_url)
    redis_version = client.info("server").get("redis_version")
    client.close()
    memory = psutil.virtual_memory().total / 2**30
    return [
        f"- Machine: {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL "
        f"{row[0] if row else '?'}, Redis {redis_version}, all on loopback.",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {load_average()} at the start "
        "(the machine is shared: ratios measured in the same run count, absolute figures move).",
    ]


def profiles() -> list[str]:
    """py-spy samples of every process, steady and in a burst, as printed (folded)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    lines = ["", "## Where the time goes, by function (`bench.profile_steady`)", ""]
    if not Path(spy).exists():
        return [*lines, "py-spy is not installed (`pip install -e '.[bench]'`): skipped."]
    for argv in PROFILES:
        print(f"  {' '.join(argv[1:3])} …", flush=True)
        lines += [
            "<details>",
            f"<summary><code>python {' '.join(argv)}</code></summary>",
            "",
            "```",
            quoted(argv),
            "```",
            "</details>",
            "",
        ]
    return lines


IDLE_SECONDS = 10.0  # the idle stack: lifetimes 10 s apart (bench.throughput (d))


def efficiency(
    results: dict[str, list[dict[str, Any]]], rate: float, secs: float, repeat: int
) -> list[str]:
    """Issue 18's table: CPU and commits per run, idle cost, lag quiet and with a CPU hog,
    the burst — now (medians) against the figures recorded before that work."""
    before = json.loads(BEFORE_18.read_text()) if BEFORE_18.exists() else {}
    a, b = results["ordinaut burn-down"], results["ordinaut steady"]
    h, d = results["ordinaut steady + hog"], results["ordinaut idle"]
    floor = results.get("plain Celery floor") or []

    def med(runs: list[dict[str, Any]], *path: str) -> float:
        return throughput._median(runs, *path)

    def was(key: str, fmt: str = "{:.2f}") -> str:
        return fmt.format(before[key]) if key in before else "—"

    rows = [
        (
            "(d) idle: CPU per second, nothing due",
            was("idle_cpu_ms_per_s", "{:.1f} ms/s"),
            f"{med(d, 'cpu_ms_per_s'):.1f} ms/s",
            "≤ 5",
        ),
        (
            "(d) idle: commits per second",
            was("idle_commits_per_s", "{:.2f} /s"),
            f"{med(d, 'commits_per_s'):.2f} /s",
            "≤ 2",
        ),
        (
            f"(b) steady {rate:g} runs/s: CPU per run",
            was("steady_cpu_ms_per_run", "{:.2f} ms"),
            f"{med(b, 'cpu_ms_per_run'):.2f} ms",
            "≤ 5",
        ),
        (
            "(b) steady: commits per run",
            was("steady_commits_per_run"),
            f"{med(b, 'commits_per_run'):.2f}",
            "≤ 4",
        ),
        (
            "(b) steady: lag due → started p50 / p99",
            f"{was('steady_p50_ms', '{:.1f}')} / {was('steady_p99_ms', '{:.1f}')} ms",
            f"{med(b, 'total', 'p50'):.1f} / {med(b, 'total', 'p99'):.1f} ms",
            "≤ 20 / ≤ 100",
        ),
        (
            "(h) steady + a CPU hog: lag p50 / p99",
            f"{was('hog_p50_ms', '{:.1f}')} / {was('hog_p99_ms', '{:,.0f}')} ms",
            f"{med(h, 'total', 'p50'):.1f} / {med(h, 'total', 'p99'):.1f} ms",
            "≤ 20 / ≤ 100",
        ),
        (
            "(h) steady + hog: CPU / commits per run",
            f"{was('hog_cpu_ms_per_run')} ms / {was('hog_commits_per_run')}",
            f"{med(h, 'cpu_ms_per_run'):.2f} ms / {med(h, 'commits_per_run'):.2f}",
            "",
        ),
        (
            "(a) burst: runs due at once",
            was("burst_runs_per_s", "{:.0f} runs/s"),
            f"{med(a, 'runs_per_s'):.0f} runs/s",
            "keep",
        ),
        (
            "(a) burst: CPU / commits per run",
            f"{was('burst_cpu_ms_per_run')} ms / {was('burst_commits_per_run')}",
            f"{med(a, 'cpu_ms_per_run'):.2f} ms / {med(a, 'commits_per_run'):.2f}",
            "",
        ),
    ]
    if floor:
        rows.append(
            (
                f"(e) plain Celery alone at {rate:g} tasks/s: CPU per no-op task",
                "",
                f"{med(floor, 'cpu_ms_per_task'):.2f} ms (worker "
                f"{med(floor, 'worker_cpu_ms_per_task'):.2f}, publishing "
                f"{med(floor, 'publish_cpu_ms_per_task'):.2f})",
                "the floor",
            )
        )
    loads = "; ".join(r["load"] for r in (*b, *h))
    lines = [
        "",
        "## Efficiency at a steady pace (issue 18): before and now",
        "",
        f"Before: commit `{before.get('commit', '?')}`, {before.get('measured', '?')}, "
        f"{before.get('load', '?')} (`{before.get('command', '?')}`; recorded in "
        f"`bench/results/{BEFORE_18.name}`). Now: the medians of this run's rounds "
        f"(`python -m bench.throughput --rate {rate:g} --seconds {secs:g} --idle-seconds "
        f"{IDLE_SECONDS:g} --repeat {repeat}`); steady loads at the end of each: {loads}. CPU sums "
        "beat, both workers (pool processes included) and the PostgreSQL backends of the "
        "bench database; commits are `xact_commit` read after every process exited.",
        "",
        "| measure | before | now | target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {m} | {x} | {y} | {t} |" for m, x, y, t in rows]
    lines += [
        "",
        "Where the CPU of a steady run goes, by process (ms per run, last round): "
        f"{b[-1]['cpu_split']}; with the hog: {h[-1]['cpu_split']}. By function: "
        "`python -m bench.profile_steady` (py-spy).",
    ]
    return lines


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="BENCHMARKS.md", help="the report file (rewritten)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5000, help="burn-down size, every system")
    parser.add_argument("--rate", type=float, default=50.0, help="steady rate, runs or jobs/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady measurement length")
    parser.add_argument("--chaos-minutes", type=float, default=1.0)
    parser.add_argument("--skip", choices=PARTS, action="append", default=[])
    args = parser.parse_args(argv)
    db, rd = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not db or not rd:
        print("set DATABASE_URL and REDIS_URL (servers to create bench databases on)")
        return 2
    began = time.monotonic()
    parts = [p for p in PARTS if p not in args.skip]
    out = [
        "# Benchmarks",
        "",
        "Written by `python -m bench.run_all"
        + "".join(f" --skip {s}" for s in args.skip)
        + f" --repeat {args.repeat} --runs {args.runs} --rate {args.rate:g} "
        f"--seconds {args.seconds:g} --chaos-minutes {args.chaos_minutes:g}` with "
        "`DATABASE_URL` and `REDIS_URL` set; every figure is the median of the repeats. "
        "This file is rewritten whole by that command; earlier measurements and their notes "
        "are in [docs/benchmark-history.md](docs/benchmark-history.md).",
        "",
    ]
    out += machine(db, rd)
    fig: dict[str, float] = {}
    where: list[str] = []  # where the time goes
    rows: list[tuple[str, str, str]] = []  # (figure, value, command)
    n, rate, secs = args.runs, args.rate, args.seconds
    measures: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
        "ordinaut burn-down": ("ordinaut", lambda: throughput.burn_down(db, rd, n)),
        "ordinaut steady": ("ordinaut", lambda: throughput.steady(db, rd, rate, secs)),
        "ordinaut steady + hog": (
            "ordinaut",
            lambda: throughput.steady(db, rd, rate, secs, hog=True),
        ),
        "ordinaut idle": ("ordinaut", lambda: throughput.idle(db, rd, IDLE_SECONDS)),
        "plain Celery": ("celery", lambda: throughput.ceiling(db, rd, n)),
        "plain Celery floor": ("celery", lambda: throughput.celery_floor(db, rd, rate, secs)),
        "Celery beat": ("celery", lambda: celery_beat_lag(db, rd, secs)),
        "procrastinate": ("procrastinate", lambda: procrastinate(db, n, rate, secs)),
        "SKIP LOCKED": ("peers", lambda: peers.skip_locked(db, n)),
        "XADD": ("peers", lambda: peers.xadd(rd, 50_000)),
    }
    # repeats outermost: each round measures every system once, so a change in the shared
    # machine's load hits all of them alike and the ratios stay fair
    results: dict[str, list[dict[str, Any]]] = {k: [] for k, (p, _) in measures.items()}
    for i in range(args.repeat):
        for label, (part, measure) in measures.items():
            if part in parts:
                results[label].append(once(measure, f"{label} {i + 1}/{args.repeat}"))
    if "ordinaut" in parts:
        a = results["ordinaut burn-down"]
        fig["ordinaut_burn"] = median_of(a, "runs_per_s")
        rows.append(
            (
                f"Ordinaut burn-down, {n} one-step runs",
                f"{fig['ordinaut_burn']:.0f} runs/s",
                f"python -m bench.throughput --only a --runs {n}",
            )
        )
        b = results["ordinaut steady"]
        fig["ordinaut_p50"] = statistics.median(r["total"]["p50"] for r in b)
        fig["ordinaut_p99"] = statistics.median(r["total"]["p99"] for r in b)
        rows.append(
            (
                f"Ordinaut steady {rate:g} runs/s, lag due → started p50 / p99",
                f"{fig['ordinaut_p50']:.1f} / {fig['ordinaut_p99']:.1f} ms",
                f"python -m bench.throughput --only b --rate {rate:g} --seconds {secs:g}",
            )
        )
        for hop in ("beat_to_due_work", "due_work_to_publish", "publish_to_start"):
            p50 = statistics.median(r[hop]["p50"] for r in b)
            p99 = statistics.median(r[hop]["p99"] for r in b)
            rows.append(
                (
                    f"… of which {hop.replace('_', ' ')}, p50 / p99",
                    f"{p50:.1f} / {p99:.1f} ms",
                    "same",
                )
            )
        where.append(f"- Ordinaut steady, CPU ms per run by process: {b[-1]['cpu_split']}")
        where.append(f"- Ordinaut burn-down, CPU ms per run by process: {a[-1]['cpu_split']}")
    if "celery" in parts:
        c = results["plain Celery"]
        fig["celery_burn"] = median_of(c, "tasks_per_s")
        rows.append(
            (
                f"plain Celery, {n} no-op tasks",
                f"{fig['celery_burn']:.0f} tasks/s",
                f"python -m bench.throughput --only c --runs {n}",
            )
        )
        bl = results["Celery beat"]
        fig["beat_p50"], fig["beat_p99"] = median_of(bl, "p50_ms"), median_of(bl, "p99_ms")
        rows.append(
            (
                "plain Celery beat, every-second entry, lateness p50 / p99",
                f"{fig['beat_p50']:.1f} / {fig['beat_p99']:.1f} ms",
                "python -m bench.run_all (celery part)",
            )
        )
    if "procrastinate" in parts:
        pr = results["procrastinate"]
        fig["pro_burn"] = median_of(pr, "burn_down_per_s")
        fig["pro_p50"], fig["pro_p99"] = median_of(pr, "lag_p50_ms"), median_of(pr, "lag_p99_ms")
        rows.append(
            (
                f"procrastinate {pr[0].get('version', '')} burn-down, {n} no-op jobs "
                "(one worker, concurrency 2)",
                f"{fig['pro_burn']:.0f} jobs/s",
                "python -m bench.run_all (procrastinate part)",
            )
        )
        rows.append(
            (
                f"procrastinate schedule_at lag at {rate:g} jobs/s, p50 / p99",
                f"{fig['pro_p50']:.1f} / {fig['pro_p99']:.1f} ms",
                "python -m bench.run_all (procrastinate part)",
            )
        )
    if "peers" in parts:
        sl = results["SKIP LOCKED"]
        xa = results["XADD"]
        fig["skip_locked"], fig["xadd"] = (
            median_of(sl, "jobs_per_s"),
            median_of(xa, "entries_per_s"),
        )
        rows.append(
            (
                f"bare SKIP LOCKED loop, 2 processes, {n} rows",
                f"{fig['skip_locked']:.0f} jobs/s",
                f"python -m bench.peers --jobs {n}",
            )
        )
        rows.append(
            ("raw XADD, pipelined by 500", f"{fig['xadd']:.0f} entries/s", "python -m bench.peers")
        )
    out += ["", "## Side by side", "", "| figure | median | command |", "|---|---|---|"]
    out += [f"| {f} | {v} | `{c}` |" for f, v, c in rows]
    out += ["", "| ratio | value | target |", "|---|---|---|"]
    ratios = (
        ("Ordinaut / procrastinate burn-down", "ordinaut_burn", "pro_burn", "≥ 1"),
        ("Ordinaut / plain Celery burn-down", "ordinaut_burn", "celery_burn", "≥ 0.8"),
        ("Ordinaut steady p99 / plain Celery beat p99", "ordinaut_p99", "beat_p99", "≤ 1"),
        ("Ordinaut burn-down / bare SKIP LOCKED loop", "ordinaut_burn", "skip_locked", "ceiling"),
    )
    for label, top, bottom, target in ratios:
        if top in fig and bottom in fig:
            out.append(f"| {label} | {ratio(fig[top], fig[bottom])} | {target} |")
    if where:
        out += ["", "Where the time goes:", "", *where]
    if "ordinaut" in parts:
        out += efficiency(results, rate, secs, args.repeat)
    if "profile" in parts:
        out += profiles()
    if "chaos" in parts:
        print("  chaos …")
        m = args.chaos_minutes
        out += [
            "",
            f"## Chaos soak: `python -m bench.chaos --minutes {m:g} --seed 1`",
            "",
            "```",
            quoted(["-m", "bench.chaos", "--minutes", f"{m:g}", "--seed", "1"], timeout=1800),
            "```",
        ]
        if CHAOS_10.exists():
            out += [
                "",
                "## Chaos soak, 10 minutes: `python -m bench.chaos --minutes 10 --seed 1`",
                "",
                "Recorded separately (it takes 12 minutes), as printed, in "
                f"`bench/results/{CHAOS_10.name}` (written "
                f"{datetime.fromtimestamp(CHAOS_10.stat().st_mtime, UTC):%Y-%m-%d %H:%M} UTC):",
                "",
                "```",
                CHAOS_10.read_text().strip(),
                "```",
            ]
    for part, argv in QUOTED:
        if part in parts:
            print(f"  {part} …", flush=True)
            out += ["", f"## `python {' '.join(argv)}`", "", "```", quoted(argv), "```"]
    out += [
        "",
        f"Finished in {(time.monotonic() - began) / 60:.1f} min; {load_average()} at the end.",
        "",
    ]
    Path(args.out).write_text("\n".join(out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
