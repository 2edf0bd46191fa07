"""Wall time to UTC: the DST rule (gap shifts forward, fold takes the first), and the merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ordinaut.scheduling.wall import iter_utc, resolve_wall_time, wall_of

CHISINAU = ZoneInfo("Europe/Chisinau")  # changes at 00:00 UTC: 02:00->03:00, 03:00->02:00
BUCHAREST = ZoneInfo("Europe/Bucharest")  # changes at 01:00 UTC: 03:00->04:00, 04:00->03:00


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "wall", "expected", "note_parts"),
    [
        # Chisinau, spring forward on 2026-03-29: 02:00-02:59 does not exist
        ("Europe/Chisinau", "2026-03-29T01:59", "2026-03-28T23:59Z", None),
        ("Europe/Chisinau", "2026-03-29T02:00", "2026-03-29T00:00Z", ["02:00 does not exist"]),
        ("Europe/Chisinau", "2026-03-29T02:30", "2026-03-29T00:30Z", ["03:30 EEST", "skip 1h"]),
        ("Europe/Chisinau", "2026-03-29T02:59", "2026-03-29T00:59Z", ["fires at 03:59 EEST"]),
        ("Europe/Chisinau", "2026-03-29T03:00", "2026-03-29T00:00Z", None),
        # Chisinau, fall back on 2026-10-25: 02:00-02:59 happens twice; the first (EEST) wins
        ("Europe/Chisinau", "2026-10-25T01:59", "2026-10-24T22:59Z", None),
        ("Europe/Chisinau", "2026-10-25T02:00", "2026-10-24T23:00Z", ["happens twice"]),
        ("Europe/Chisinau", "2026-10-25T02:30", "2026-10-24T23:30Z", ["first 02:30 (EEST)"]),
        ("Europe/Chisinau", "2026-10-25T03:00", "2026-10-25T01:00Z", None),
        # Bucharest, one hour later in UTC terms: 03:00-03:59 missing / doubled
        ("Europe/Bucharest", "2026-03-29T02:30", "2026-03-29T00:30Z", None),
        ("Europe/Bucharest", "2026-03-29T03:30", "2026-03-29T01:30Z", ["fires at 04:30 EEST"]),
        ("Europe/Bucharest", "2026-03-29T04:00", "2026-03-29T01:00Z", None),
        ("Europe/Bucharest", "2026-10-25T03:30", "2026-10-25T00:30Z", ["happens twice"]),
        ("Europe/Bucharest", "2026-10-25T04:00", "2026-10-25T02:00Z", None),
        # zones without DST
        ("UTC", "2026-03-29T02:30", "2026-03-29T02:30Z", None),
        ("Etc/GMT+2", "2026-07-01T12:00", "2026-07-01T14:00Z", None),
        ("America/Argentina/Buenos_Aires", "2026-07-01T12:00", "2026-07-01T15:00Z", None),
    ],
)
def test_resolve_wall_time(
    zone: str, wall: str, expected: str, note_parts: list[str] | None
) -> None:
    instant, note = resolve_wall_time(datetime.fromisoformat(wall), ZoneInfo(zone))
    assert instant == utc(expected)
    assert instant.tzinfo is UTC
    if note_parts is None:
        assert note is None
    else:
        assert note is not None
        for part in note_parts:
            assert part in note


@pytest.mark.parametrize("zone", [CHISINAU, BUCHAREST])
@pytest.mark.parametrize("day", ["2026-03-28", "2026-10-24"])
def test_resolve_wall_time_is_zoneinfo_fold_0(zone: ZoneInfo, day: str) -> None:
    """RFC 5545 §3.3.5 is exactly zoneinfo's fold=0, minute by minute across both days."""
    start = datetime.fromisoformat(day)
    for minute in range(0, 2 * 24 * 60, 7):
        wall = start + timedelta(minutes=minute)
        assert resolve_wall_time(wall, zone)[0] == wall.replace(tzinfo=zone).astimezone(UTC)


def test_gap_note_reads_well() -> None:
    _, note = resolve_wall_time(datetime(2026, 3, 29, 2, 30), CHISINAU)
    assert note == (
        "02:30 does not exist on 2026-03-29 in Europe/Chisinau (DST gap: clocks skip 1h); "
        "fires at 03:30 EEST"
    )


def test_fold_note_reads_well() -> None:
    _, note = resolve_wall_time(datetime(2026, 10, 25, 2, 30), CHISINAU)
    assert note == (
        "02:30 happens twice on 2026-10-25 in Europe/Chisinau (DST fold: clocks go back 1h); "
        "fires once, at the first 02:30 (EEST), not again at 02:30 EET (RFC 5545 §3.3.5)"
    )


def test_wall_of_drops_fold() -> None:
    second_pass = utc("2026-10-25T00:30Z")  # 02:30 EET, the repeat
    assert wall_of(second_pass, CHISINAU) == datetime(2026, 10, 25, 2, 30)
    assert wall_of(second_pass, CHISINAU).fold == 0


GAP_WALLS = [datetime(2026, 3, 29, h, m) for h, m in [(2, 0), (2, 30), (3, 0), (3, 15), (3, 30)]]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # 02:00 and 03:00 are the same instant, so are 02:30 and 03:30; order is by instant
        ("2026-03-28T23:00Z", ["2026-03-29T00:00Z", "2026-03-29T00:15Z", "2026-03-29T00:30Z"]),
        ("2026-03-29T00:00Z", ["2026-03-29T00:15Z", "2026-03-29T00:30Z"]),
        ("2026-03-29T00:10Z", ["2026-03-29T00:15Z", "2026-03-29T00:30Z"]),
        ("2026-03-29T00:20Z", ["2026-03-29T00:30Z"]),
        ("2026-03-29T00:30Z", []),
    ],
)
def test_iter_utc_orders_and_merges_across_a_gap(after: str, expected: list[str]) -> None:
    def walls_from(start: datetime) -> list[datetime]:
        return [wall for wall in GAP_WALLS if wall >= start]

    found = list(iter_utc(walls_from, CHISINAU, utc(after)))
    assert [instant for instant, _ in found] == [utc(text) for text in expected]


def test_iter_utc_collision_note() -> None:
    found = dict(iter_utc(lambda start: GAP_WALLS, CHISINAU, utc("2026-03-28T23:00Z")))
    note = found[utc("2026-03-29T00:00Z")]
    assert note is not None
    assert note.startswith("02:00 does not exist on 2026-03-29")
    assert "the 03:00 occurrence is the same instant, so it fires once" in note
    assert found[utc("2026-03-29T00:15Z")] is None
