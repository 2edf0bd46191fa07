"""Budgets, rate limits and fair sharing: the pure decisions, from tables (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordinaut.config import Settings
from ordinaut.errors import ConfigError, ValidationError
from ordinaut.policy import budgets, fair_share, rate_limits
from ordinaut.policy.budgets import Counter, parse_budgets
from ordinaut.runs.policies import rate_limits_of
from ordinaut.vocabulary import BudgetMetric


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


FULL = {
    "tz": "Europe/Chisinau",
    "runs_per_day": 2,
    "tool_calls_per_day": 3,
    "llm_tokens_per_day": 100,
    "llm_tokens_per_month": 1000,
}


def test_budget_round_trip() -> None:
    rule = parse_budgets(FULL)
    assert rule.to_json() == FULL
    assert parse_budgets({"runs_per_day": 0}).caps == {BudgetMetric.RUNS_PER_DAY: 0}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (7, "budgets"),
        ({"runs_per_day": -1}, "budgets.runs_per_day"),
        ({"runs_per_day": 1.5}, "budgets.runs_per_day"),
        ({"runs_per_day": True}, "budgets.runs_per_day"),
        ({"tool_calls_per_day": 10**13}, "budgets.tool_calls_per_day"),
        ({"runs_per_week": 1}, "budgets.runs_per_week"),
        ({"tz": "Nowhere/Else"}, "budgets.tz"),
    ],
)
def test_budget_refusals_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_budgets(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("now", "metric", "period"),
    [
        # a Chisinau day starts at local midnight: 21:59Z on Dec 2 is still Dec 2 (+02:00)...
        ("2026-12-02T21:59Z", BudgetMetric.RUNS_PER_DAY, "2026-12-02"),
        ("2026-12-02T22:00Z", BudgetMetric.RUNS_PER_DAY, "2026-12-03"),
        # ... and at +03:00 in summer
        ("2026-07-01T20:59Z", BudgetMetric.TOOL_CALLS_PER_DAY, "2026-07-01"),
        ("2026-07-01T21:00Z", BudgetMetric.TOOL_CALLS_PER_DAY, "2026-07-02"),
        # the spring-forward day is 23 hours long: 21:00Z on Mar 28 is 23:00 EET, Mar 28
        ("2026-03-28T21:59Z", BudgetMetric.LLM_TOKENS_PER_DAY, "2026-03-28"),
        ("2026-03-28T22:00Z", BudgetMetric.LLM_TOKENS_PER_DAY, "2026-03-29"),
        ("2026-03-29T20:59Z", BudgetMetric.LLM_TOKENS_PER_DAY, "2026-03-29"),
        ("2026-03-29T21:00Z", BudgetMetric.LLM_TOKENS_PER_DAY, "2026-03-30"),
        # the fall-back day is 25 hours long
        ("2026-10-25T21:59Z", BudgetMetric.RUNS_PER_DAY, "2026-10-25"),
        ("2026-10-25T22:00Z", BudgetMetric.RUNS_PER_DAY, "2026-10-26"),
        # months
        ("2026-11-30T21:59Z", BudgetMetric.LLM_TOKENS_PER_MONTH, "2026-11"),
        ("2026-11-30T22:00Z", BudgetMetric.LLM_TOKENS_PER_MONTH, "2026-12"),
    ],
)
def test_periods_are_local(now: str, metric: BudgetMetric, period: str) -> None:
    assert budgets.period_of(parse_budgets(FULL), metric, utc(now)) == period


NOW = utc("2026-12-02T12:00Z")
DAY, MONTH = "2026-12-02", "2026-12"


@pytest.mark.parametrize(
    ("counter", "usage", "adding", "exceeded"),
    [
        ("runs", {}, 1, None),
        ("runs", {("runs", DAY): 1}, 1, None),
        ("runs", {("runs", DAY): 2}, 1, (BudgetMetric.RUNS_PER_DAY, 2, 2)),
        ("runs", {("runs", "2026-12-01"): 2}, 1, None),  # yesterday's runs do not count
        ("tool_calls", {("tool_calls", DAY): 2}, 1, None),
        ("tool_calls", {("tool_calls", DAY): 3}, 1, (BudgetMetric.TOOL_CALLS_PER_DAY, 3, 3)),
        # tokens: known only after a call, so a cap is hit once usage reaches it
        ("llm_tokens", {("llm_tokens", DAY): 99}, 0, None),
        ("llm_tokens", {("llm_tokens", DAY): 100}, 0, (BudgetMetric.LLM_TOKENS_PER_DAY, 100, 100)),
        (
            "llm_tokens",
            {("llm_tokens", DAY): 10, ("llm_tokens", MONTH): 1000},
            0,
            (BudgetMetric.LLM_TOKENS_PER_MONTH, 1000, 1000),
        ),
    ],
)
def test_check(
    counter: str,
    usage: dict[tuple[str, str], int],
    adding: int,
    exceeded: tuple[BudgetMetric, int, int] | None,
) -> None:
    used = {Counter(c, p): n for (c, p), n in usage.items()}
    verdict = budgets.check(parse_budgets(FULL), counter, used, NOW, adding=adding)
    if exceeded is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert (verdict.metric, verdict.used, verdict.cap) == exceeded
        assert verdict.reason.startswith(f"budget {exceeded[0].value} {exceeded[1]} of")


def test_reason_reads_like_the_issue() -> None:
    rule = parse_budgets({"tz": "Europe/Chisinau", "runs_per_day": 50})
    verdict = budgets.check(rule, "runs", {Counter("runs", DAY): 50}, NOW)
    assert verdict is not None
    assert verdict.reason == "budget runs_per_day 50 of 50 (2026-12-02 Europe/Chisinau)"


@pytest.mark.parametrize(
    ("output", "tokens"),
    [
        ({"text": "x", "usage": {"total_tokens": 42}}, 42),
        ({"text": "x", "usage": {"prompt_tokens": 10, "completion_tokens": 5}}, 15),
        ({"text": "x", "usage": {}}, 0),
        ({"text": "x", "usage": {"total_tokens": "many"}}, 0),
        ({"text": "x", "usage": {"total_tokens": -3}}, 0),
        ("text", 0),
    ],
)
def test_tokens_used(output: Any, tokens: int) -> None:
    assert budgets.tokens_used(output) == tokens


# --- rate limits -------------------------------------------------------------------------


def test_rate_limit_setting_parses() -> None:
    rules = rate_limits.parse_rate_limits(
        '[{"tools": "notify.*", "per_minute": 20}, {"server": "home", "concurrent": 2,'
        ' "per": "all"}]'
    )
    assert rules[0].matches("notify.send", None) and not rules[0].matches("notes.add", None)
    assert rules[1].matches("home.lights", "home") and not rules[1].matches("x.y", "other")
    assert rules[0].key("a1") == "0:notify.*:a1"
    assert rules[1].key("a1") == "1:home:*"
    assert rate_limits.matching(rules, "notify.send", "home") == rules
    assert rate_limits.parse_rate_limits("  ") == ()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{", "ORDINAUT_RATE_LIMITS"),
        ('{"tools": "x"}', "ORDINAUT_RATE_LIMITS"),
        ('[{"tools": "n.*"}]', "ORDINAUT_RATE_LIMITS[0]"),
        ('[{"tools": "n.*", "server": "s", "per_minute": 1}]', "ORDINAUT_RATE_LIMITS[0]"),
        ('[{"tools": "n.*", "per_minute": 0}]', "ORDINAUT_RATE_LIMITS[0].per_minute"),
        ('[{"tools": "n.*", "per_minute": 1, "per": "host"}]', "ORDINAUT_RATE_LIMITS[0].per"),
        ('[{"tools": "n /", "per_minute": 1}]', "ORDINAUT_RATE_LIMITS[0].tools"),
        ('[{"tools": "n.*", "per_minute": 1, "burst": 3}]', "ORDINAUT_RATE_LIMITS[0].burst"),
    ],
)
def test_rate_limit_refusals(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rate_limits.parse_rate_limits(text)
    assert caught.value.field == field


PER_MINUTE = rate_limits.RateLimit(0, tools="notify.*", per_minute=3)
CONCURRENT = rate_limits.RateLimit(1, server="home", concurrent=2)
T0 = utc("2026-12-02T12:00:00Z")


def secs(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in offsets]


@pytest.mark.parametrize(
    ("rule", "started", "in_flight", "now", "wait_until"),
    [
        (PER_MINUTE, [], 0, 0, None),
        (PER_MINUTE, secs(0, 10), 0, 20, None),
        # the third-newest start frees its slot one minute after it started
        (PER_MINUTE, secs(0, 10, 20), 0, 30, 60),
        (PER_MINUTE, secs(20, 0, 10, 15), 0, 30, 70),
        # a start a minute ago no longer counts (sliding window, not calendar minutes)
        (PER_MINUTE, secs(0, 10, 20), 0, 60, None),
        # starts stamped after our clock reading (other workers' calls recorded while we
        # waited for the lock) count: the limit holds across workers
        (PER_MINUTE, secs(30.004, 30.010, 30.100), 0, 30, 90.004),
        (CONCURRENT, [], 1, 0, None),
        (CONCURRENT, [], 2, 0, 1),
    ],
)
def test_rate_decision(
    rule: rate_limits.RateLimit,
    started: list[datetime],
    in_flight: int,
    now: float,
    wait_until: float | None,
) -> None:
    wait = rate_limits.decide(rule, started, in_flight, T0 + timedelta(seconds=now))
    if wait_until is None:
        assert wait is None
    else:
        assert wait is not None
        assert wait.until == T0 + timedelta(seconds=wait_until)
        assert "rate limit" in wait.reason


# --- fair sharing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], []),
        (["a1", "a2", "a3", "b1"], ["a1", "b1", "a2", "a3"]),
        (["a1", "a2", "b1", "b2", "c1"], ["a1", "b1", "c1", "a2", "b2"]),
        # priority first (1 is the most urgent), round robin within it
        (["a1:9", "a2:9", "b1:9", "c1:1"], ["c1:1", "a1:9", "b1:9", "a2:9"]),
    ],
)
def test_round_robin(items: list[str], expected: list[str]) -> None:
    order = fair_share.round_robin(
        items,
        priority=lambda s: int(s.split(":")[1]) if ":" in s else 5,
        owner=lambda s: s[0],
    )
    assert order == expected


def test_a_bad_rate_limit_setting_is_a_config_error_naming_the_entry() -> None:
    base = {"DATABASE_URL": "postgresql://x@127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    bad = Settings.model_validate({**base, "rate_limits": '[{"tools": "n.*", "per_minute": 0}]'})
    with pytest.raises(ConfigError) as caught:
        rate_limits_of(bad)
    assert caught.value.field == "ORDINAUT_RATE_LIMITS[0].per_minute"
    good = Settings.model_validate({**base, "rate_limits": '[{"tools": "n.*", "per_minute": 2}]'})
    assert rate_limits_of(good)[0].per_minute == 2
