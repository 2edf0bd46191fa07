"""The soak's report as Markdown: the command, the load, the buckets, the must-be-0 table."""

from __future__ import annotations

import statistics

from bench.chaos.soak import Outcome


def render(outcome: Outcome) -> str:
    """The report of one soak (what BENCHMARKS.md quotes)."""
    r, o = outcome.report, outcome.options
    t0, end = outcome.window
    lines = [
        f"Command: `python -m bench.chaos --minutes {o.minutes:g} --seed {o.seed} "
        f"--tasks {o.tasks} --event-tasks {o.event_tasks} --event-rate {o.event_rate:g}`",
        f"Window {t0:%Y-%m-%d %H:%M:%S} → {end:%H:%M:%S} UTC; {outcome.load[0]} at start, "
        f"{outcome.load[1]} at the window's end.",
        "",
        "| occurrences | count |",
        "|---|---|",
        f"| expected | {sum(r.buckets.values())} |",
    ]
    for bucket in ("succeeded", "skipped", "failed", "unfinished", "lost"):
        lines.append(f"| {bucket} | {r.buckets[bucket]} |")
    for reason, n in sorted(r.skip_reasons.items()):
        lines.append(f"| skipped: {reason} | {n} |")
    lines += [
        "",
        "| event fires (accepted event, task it matches) | count |",
        "|---|---|",
        f"| expected | {sum(r.event_buckets.values())} |",
    ]
    for bucket in ("succeeded", "skipped", "failed", "unfinished", "lost"):
        lines.append(f"| {bucket} | {r.event_buckets[bucket]} |")
    for reason, n in sorted(r.event_skip_reasons.items()):
        lines.append(f"| skipped: {reason} | {n} |")
    lines += ["", "| must be 0 | count |", "|---|---|"]
    for name, n in r.must_be_zero.items():
        lines.append(f"| {name} | {n}{'' if n == 0 else ' ✗'} |")
    lines += ["", "| figure | value |", "|---|---|"]
    for name, value in r.info.items():
        lines.append(f"| {name} | {value} |")
    lines += ["", "| fault | times | back on time after (s): each | median |", "|---|---|---|---|"]
    for kind, values in sorted(r.recovery.items()):
        finite = [v for v in values if v == v]
        median = f"{statistics.median(finite):.2f}" if finite else "n/a"
        lines.append(f"| {kind} | {len(values)} | {', '.join(map(str, values))} | {median} |")
    if r.examples:
        lines += ["", "Examples:"]
        for name, found in r.examples.items():
            lines += [f"- {name}: {text}" for text in found]
    kept = "" if r.clean and not o.keep_logs else f" (logs kept: {outcome.log_dir})"
    lines += ["", f"Result: {'CLEAN' if r.clean else 'NOT CLEAN'}{kept}"]
    return "\n".join(lines)
