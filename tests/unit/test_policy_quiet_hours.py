"""Quiet hours: parsing (every refusal names its field) and the quiet/next-allowed table, DST
included (window edges follow the schedules' rule: gap shifts forward, fold takes the first)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ordinaut.errors import ValidationError
from ordinaut.policy.quiet_hours import describe, parse_quiet_hours, parse_window, quiet_at
from ordinaut.vocabulary import OnQuiet


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rule(*windows: str, tz: str = "Europe/Chisinau") -> Any:
    return parse_quiet_hours({"tz": tz, "windows": list(windows)})


def test_defaults_and_round_trip() -> None:
    parsed = parse_quiet_hours({"windows": ["22:00-08:00"]}, default_tz="Europe/Chisinau")
    assert parsed.on_quiet is OnQuiet.DEFER
    assert parsed.scopes == ("notify",)
    assert parsed.to_json() == {
        "tz": "Europe/Chisinau",
        "windows": ["22:00-08:00"],
        "on_quiet": "defer",
        "scopes": ["notify"],
    }
    assert parse_quiet_hours(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("22:00-08:00", set(range(7)), 22 * 60, 8 * 60),
        ("SA 00:00-24:00", {5}, 0, 1440),
        ("MO,TU,FR 12:30-13:00", {0, 1, 4}, 750, 780),
        ("SU 23:59-00:01", {6}, 1439, 1),
    ],
)
def test_windows_parse(text: str, days: set[int], start: int, end: int) -> None:
    window = parse_window(text)
    assert (set(window.days), window.start, window.end) == (days, start, end)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([], "quiet_hours", "object"),
        ({"windows": []}, "quiet_hours.windows", "non-empty"),
        ({"windows": ["22-08"]}, "quiet_hours.windows[0]", "not a window"),
        ({"windows": ["08:00-09:00", "XX 10:00-11:00"]}, "quiet_hours.windows[1]", "weekday"),
        ({"windows": ["mo 10:00-11:00"]}, "quiet_hours.windows[0]", "not a window"),
        ({"windows": ["25:00-08:00"]}, "quiet_hours.windows[0]", "00:00-23:59"),
        ({"windows": ["10:60-11:00"]}, "quiet_hours.windows[0]", "00:00-23:59"),
        ({"windows": ["24:00-08:00"]}, "quiet_hours.windows[0]", "24:00 only as an end"),
        ({"windows": ["08:00-08:00"]}, "quiet_hours.windows[0]", "empty"),
        ({"windows": [7]}, "quiet_hours.windows[0]", "string"),
        ({"windows": ["00:00-24:00"]}, "quiet_hours.windows", "whole week"),
        ({"windows": ["12:00-12:01"], "tz": "Mars/Base"}, "quiet_hours.tz", "unknown"),
        ({"windows": ["12:00-12:01"], "on_quiet": "later"}, "quiet_hours.on_quiet", "defer"),
        ({"windows": ["12:00-12:01"], "scopes": []}, "quiet_hours.scopes", "non-empty"),
        ({"windows": ["12:00-12:01"], "scopes": ["Notify"]}, "quiet_hours.scopes[0]", "scope"),
        ({"windows": ["12:00-12:01"], "mode": 1}, "quiet_hours.mode", "unknown field"),
    ],
)
def test_refusals_name_the_field(raw: Any, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_quiet_hours(raw)
    assert caught.value.field == field
    assert words in caught.value.message


# Europe/Chisinau: UTC+2 in winter, +3 in summer; 2026-03-29 02:00->03:00, 2026-10-25 03:00->02:00
@pytest.mark.parametrize(
    ("windows", "now", "quiet", "until"),
    [
        # across midnight, a winter Wednesday (2026-12-02)
        (["22:00-08:00"], "2026-12-02T21:59:59+02:00", False, None),
        (["22:00-08:00"], "2026-12-02T22:00:00+02:00", True, "2026-12-03T08:00+02:00"),
        (["22:00-08:00"], "2026-12-03T03:00:00+02:00", True, "2026-12-03T08:00+02:00"),
        (["22:00-08:00"], "2026-12-03T08:00:00+02:00", False, None),
        (["22:00-08:00"], "2026-12-02T12:00:00+02:00", False, None),
        # weekday prefixes: a window belongs to the day it starts on
        (["SA 00:00-24:00"], "2026-12-05T10:00+02:00", True, "2026-12-06T00:00+02:00"),
        (["SA 00:00-24:00"], "2026-12-06T10:00+02:00", False, None),
        (["FR 22:00-02:00"], "2026-12-05T01:00+02:00", True, "2026-12-05T02:00+02:00"),
        (["FR 22:00-02:00"], "2026-12-06T01:00+02:00", False, None),
        # touching windows are one quiet period: Friday night into all of Saturday and beyond
        (
            ["22:00-08:00", "SA 00:00-24:00"],
            "2026-12-04T23:00+02:00",
            True,
            "2026-12-06T08:00+02:00",
        ),
        (
            ["SA,SU 00:00-24:00", "MO 00:00-09:00"],
            "2026-12-05T09:00+02:00",
            True,
            "2026-12-07T09:00+02:00",
        ),
        # spring forward: an end at 02:30 (inside the gap) is shifted to 03:30 EEST
        (["22:00-02:30"], "2026-03-29T03:10+03:00", True, "2026-03-29T03:30+03:00"),
        (["22:00-02:30"], "2026-03-29T03:30+03:00", False, None),
        # a start inside the gap is shifted forward too: 02:30 starts at 03:30 EEST
        (["02:30-05:00"], "2026-03-29T03:15+03:00", False, None),
        (["02:30-05:00"], "2026-03-29T03:30+03:00", True, "2026-03-29T05:00+03:00"),
        # fall back: an end at 02:30 (happens twice) is the first 02:30 (EEST)
        (["22:00-02:30"], "2026-10-25T02:29+03:00", True, "2026-10-25T02:30+03:00"),
        (["22:00-02:30"], "2026-10-25T02:10+02:00", False, None),
        # a start in the fold is its first occurrence
        (["02:30-04:00"], "2026-10-25T02:40+03:00", True, "2026-10-25T04:00+02:00"),
        # another zone
        (["22:00-07:00"], "2026-07-01T03:00Z", True, "2026-07-01T11:00Z"),
    ],
)
def test_quiet_at(windows: list[str], now: str, quiet: bool, until: str | None) -> None:
    tz = "America/New_York" if now.endswith("Z") else "Europe/Chisinau"
    state = quiet_at(rule(*windows, tz=tz), utc(now))
    assert state.quiet is quiet
    assert state.until == (utc(until) if until else None)
    assert state.next_allowed == (utc(until) if until else utc(now))


def test_describe_names_window_zone_and_end() -> None:
    r = rule("22:00-08:00")
    text = describe(r, quiet_at(r, utc("2026-12-02T23:00+02:00")))
    assert text == "quiet hours 22:00\u201308:00 Europe/Chisinau until 08:00"
    r = rule("SA,SU 00:00-24:00")
    text = describe(r, quiet_at(r, utc("2026-12-05T09:00+02:00")))
    assert text == "quiet hours SA,SU 00:00\u201324:00 Europe/Chisinau until 00:00 on 2026-12-07"


def test_silences_by_scope() -> None:
    r = parse_quiet_hours({"windows": ["22:00-08:00"], "scopes": ["notify", "email"]})
    assert r.silences(("email",))
    assert not r.silences(("calendar",))
    assert not r.silences(())
