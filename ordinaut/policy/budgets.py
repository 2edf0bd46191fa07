"""Budgets: caps on runs, tool calls and LLM tokens per day (or month) in a zone.

A rule (on an agent: all its tasks together; on a task: that task alone; both apply) reads::

    {"tz": "Europe/Chisinau", "runs_per_day": 50, "tool_calls_per_day": 500,
     "llm_tokens_per_day": 200000, "llm_tokens_per_month": 2000000}

Every cap is optional. Usage is counted per *counter* (``runs``, ``tool_calls``,
``llm_tokens``) and *period* (the local date, or year-month, in ``tz``): a day starts at
local midnight, so a day in a zone changing to summer time is 23 hours long.

Decisions, pure (usage and ``now`` in):

* a run that would make ``runs`` pass ``runs_per_day`` is not started;
* a tool call that would make ``tool_calls`` pass ``tool_calls_per_day`` is not made;
* an ``llm.*`` call is not made once ``llm_tokens`` has reached a token cap (how many tokens
  a call will use is known only afterwards, from the tool's reported ``usage``; so the call
  that crosses a cap is allowed and the next one is refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ordinaut.errors import ValidationError
from ordinaut.scheduling.wall import parse_timezone
from ordinaut.vocabulary import BudgetMetric

MAX_CAP = 10**12
RUNS, TOOL_CALLS, LLM_TOKENS = "runs", "tool_calls", "llm_tokens"
DAY, MONTH = "day", "month"

# each cap: the counter it limits and the period it counts over
METRICS: Mapping[BudgetMetric, tuple[str, str]] = {
    BudgetMetric.RUNS_PER_DAY: (RUNS, DAY),
    BudgetMetric.TOOL_CALLS_PER_DAY: (TOOL_CALLS, DAY),
    BudgetMetric.LLM_TOKENS_PER_DAY: (LLM_TOKENS, DAY),
    BudgetMetric.LLM_TOKENS_PER_MONTH: (LLM_TOKENS, MONTH),
}
LLM_PREFIX = "llm."


@dataclass(frozen=True)
class Budgets:
    """A validated budget rule; ``caps`` holds only the caps that are set."""

    tz: ZoneInfo
    caps: Mapping[BudgetMetric, int]

    def to_json(self) -> dict[str, Any]:
        """The rule as stored and shown."""
        return {"tz": self.tz.key, **{m.value: cap for m, cap in self.caps.items()}}


@dataclass(frozen=True)
class Counter:
    """One usage counter: ``(counter, period)`` such as ``("runs", "2026-12-02")``."""

    counter: str
    period: str


@dataclass(frozen=True)
class Exceeded:
    """A refused action: the cap it would cross and the usage it found."""

    metric: BudgetMetric
    used: int
    cap: int
    period: str

    @property
    def reason(self) -> str:
        """``budget runs_per_day 50 of 50 (2026-12-02 Europe/Chisinau)``."""
        return f"budget {self.metric.value} {self.used} of {self.cap} ({self.period})"


def parse_budgets(raw: Any, *, field: str = "budgets", default_tz: str = "UTC") -> Budgets:
    """Validate a rule; ValidationError names the field (``budgets.runs_per_day``)."""
    if not isinstance(raw, Mapping):
        raise ValidationError("must be an object with tz and caps like runs_per_day", field=field)
    names = {m.value for m in BudgetMetric}
    for key in raw:
        if key != "tz" and key not in names:
            raise ValidationError(
                f"unknown field {key!r}; allowed: tz, {', '.join(sorted(names))}",
                field=_at(field, str(key)),
            )
    tz = parse_timezone(raw.get("tz", default_tz), field=_at(field, "tz"))
    caps: dict[BudgetMetric, int] = {}
    for metric in BudgetMetric:
        value = raw.get(metric.value)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CAP:
            raise ValidationError(
                f"must be a whole number from 0 to {MAX_CAP}", field=_at(field, metric.value)
            )
        caps[metric] = value
    return Budgets(tz, caps)


def period_of(rule: Budgets, metric: BudgetMetric, now: datetime) -> str:
    """The period ``now`` falls in for ``metric``: local ``YYYY-MM-DD`` or ``YYYY-MM``."""
    local = now.astimezone(rule.tz)
    return local.strftime("%Y-%m-%d" if METRICS[metric][1] == DAY else "%Y-%m")


def counters(rule: Budgets, counter: str, now: datetime) -> dict[BudgetMetric, Counter]:
    """The capped metrics of ``counter`` in ``rule`` and the usage counter each reads."""
    return {
        metric: Counter(counter, period_of(rule, metric, now))
        for metric in rule.caps
        if METRICS[metric][0] == counter
    }


def check(
    rule: Budgets,
    counter: str,
    usage: Mapping[Counter, int],
    now: datetime,
    *,
    adding: int = 1,
) -> Exceeded | None:
    """The first cap on ``counter`` that adding ``adding`` would pass, or None.

    ``adding=0`` asks whether a cap is already reached (LLM tokens, known only afterwards):
    then a cap is exceeded when usage is at or past it.
    """
    for metric, key in counters(rule, counter, now).items():
        cap, used = rule.caps[metric], usage.get(key, 0)
        over = used + adding > cap if adding else used >= cap
        if over:
            return Exceeded(metric, used, cap, f"{key.period} {rule.tz.key}")
    return None


def is_llm(address: str) -> bool:
    """True for the ``llm.*`` tools, whose reported usage counts as LLM tokens."""
    return address.startswith(LLM_PREFIX)


def tokens_used(output: Any) -> int:
    """Tokens an ``llm.*`` answer reports (``usage.total_tokens``, else prompt + completion)."""
    usage = output.get("usage") if isinstance(output, Mapping) else None
    if not isinstance(usage, Mapping):
        return 0

    def number(name: str) -> int:
        value = usage.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CAP
        return value if ok else 0  # type: ignore[return-value]

    return number("total_tokens") or number("prompt_tokens") + number("completion_tokens")


def _at(field: str, name: str) -> str:
    """``field.name``, or ``name`` alone when the rule is the whole body."""
    return f"{field}.{name}" if field else name
