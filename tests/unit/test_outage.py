"""The outage tracker (pure, time passed in): a line per state change, backoff meanwhile."""

from __future__ import annotations

from ordinaut.outage import Outage, first_line


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends() -> None:
    broker = Outage("Redis", first=1, cap=4)
    assert broker.may_try(0) and not broker.down
    assert broker.recovered(0) is None  # nothing to say while it is up
    line = broker.failed(10.0, "connection refused")
    assert line is not None and "Redis is unreachable (connection refused)" in line
    lines = [broker.failed(t, "connection refused") for t in (11.0, 13.0, 17.0, 21.0)]
    assert lines == [None] * 4  # quiet for as long as it lasts
    assert broker.down and broker.recovered(30.0) == "Redis is reachable again after 20 s"
    assert not broker.down and broker.recovered(31.0) is None


def test_retries_during_an_outage_back_off_to_the_cap() -> None:
    db = Outage("PostgreSQL", first=1, cap=4)
    db.failed(0.0, "refused")
    assert not db.may_try(0.5) and db.wait(0.5) == 0.5 and db.may_try(1.0)
    gaps = []
    now = 1.0
    for _ in range(4):
        db.failed(now, "refused")
        gaps.append(db.retry_at - now)
        now = db.retry_at
    assert gaps == [2, 4, 4, 4]


def test_first_line_keeps_one_line_of_a_driver_error() -> None:
    class Wrapped(Exception):
        orig = ValueError("connection failed: refused\nIs the server running?")

    assert first_line(Wrapped("ignored")) == "connection failed: refused"
    assert first_line(RuntimeError()) == "RuntimeError"
