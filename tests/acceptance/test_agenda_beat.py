"""The agenda foretells what a real beat fires, across DST changes, to the millisecond.

A DST change cannot be waited for, so the test writes its own zones (TZif files, the format
tzdata ships) whose one transition is a few seconds ahead: ``Spring`` moves clocks forward
4 s, ``Fall`` moves them back 4 s. Both the test process and the beat process read zones from
that folder (``PYTHONTZPATH``). Per-second RRULEs in those zones cross the change; the agenda
is asked before beat fires anything, and must list exactly the (occurrence, fire time) pairs
beat then writes, jitter included, with the DST notes where wall times were shifted or doubled.
"""

from __future__ import annotations

import struct
import time
import uuid
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.scheduling import wall
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import TaskCreate
from ordinaut.vocabulary import ScheduleKind
from tests.acceptance.test_beat import ECHO, beat, service, task_state, wait_started, work_rows
from tests.support import processes, wait_for

__all__ = ["service"]  # the fixture, shared with test_beat


def tzif(transition: int, before: int, after: int) -> bytes:
    """A version-1 TZif file: offset ``before`` (seconds) until ``transition`` (Unix time),
    ``after`` from then on."""
    types = [(before, 0, b"A\0"), (after, 1, b"B\0")]
    chars = b"".join(abbr for _, _, abbr in types)
    counts = struct.pack(">6l", 0, 0, 0, 1, len(types), len(chars))
    body = struct.pack(">l", transition) + bytes([1])
    infos = b"".join(struct.pack(">lBB", off, dst, 2 * i) for i, (off, dst, _) in enumerate(types))
    return b"TZif" + b"\0" * 16 + counts + body + infos + chars


@pytest.fixture
def zones(tmp_path: Path) -> Iterator[tuple[Path, str, str, datetime]]:
    """A zone folder with ``<prefix>/Spring`` and ``<prefix>/Fall`` changing at one instant."""
    change = datetime.fromtimestamp(int(time.time()) + 12, UTC)
    prefix = f"T{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "zones"
    (folder / prefix).mkdir(parents=True)
    stamp = int(change.timestamp())
    (folder / prefix / "Spring").write_bytes(tzif(stamp, 0, 4))
    (folder / prefix / "Fall").write_bytes(tzif(stamp, 4, 0))
    zoneinfo.reset_tzpath(to=[str(folder)])
    wall._zone_names.cache_clear()  # the known names are cached from the first zone parsed
    try:
        yield folder, f"{prefix}/Spring", f"{prefix}/Fall", change
    finally:
        zoneinfo.reset_tzpath()
        wall._zone_names.cache_clear()


def test_the_agenda_matches_what_beat_fires_across_dst_changes(
    settings: Settings,
    log_dir: Path,
    engine: Engine,
    service: tuple[Service, Principal],
    zones: tuple[Path, str, str, datetime],
) -> None:
    svc, me = service
    folder, spring, fall, change = zones
    ids: dict[str, uuid.UUID] = {}
    for zone in (spring, fall):
        tz = zoneinfo.ZoneInfo(zone)
        # wall times every 2 s from 6 s before the change to 8 s after it
        start = (change - timedelta(seconds=6)).astimezone(tz).replace(tzinfo=None)
        rule = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=8"
        body = TaskCreate(
            title=f"rule in {zone}",
            schedule_kind=ScheduleKind.RRULE,
            schedule_expr=rule,
            timezone=zone,
            jitter_seconds=1,
            payload=ECHO,
        )
        ids[zone] = svc.create_task(me, body).id
    asked = datetime.now(UTC)
    page = svc.agenda(me, start=asked, end=asked + timedelta(minutes=5), tz="UTC")
    assert page.next_cursor is None
    foretold = {
        zone: [(i.occurrence, i.at) for i in page.items if i.task_id == task_id]
        for zone, task_id in ids.items()
    }
    notes = {
        zone: [n for i in page.items if i.task_id == tid for n in i.notes]
        for zone, tid in ids.items()
    }
    assert any("does not exist" in n for n in notes[spring]), notes
    assert any("happens twice" in n for n in notes[fall]), notes
    assert [i.at for i in page.items] == sorted(i.at for i in page.items)
    assert all(i.at > asked for i in page.items)
    assert {i.title for i in page.items} == {f"rule in {spring}", f"rule in {fall}"}

    with processes() as procs:
        procs.append(proc := beat(settings, log_dir, PYTHONTZPATH=str(folder)))
        wait_started(proc)

        def completed() -> bool:
            return all(task_state(engine, t)[0] == "completed" for t in ids.values())

        wait_for(completed, 40, proc=proc)

    for zone, task_id in ids.items():
        fired = [(r.run_at, r.not_before) for r in work_rows(engine, task_id)]
        assert {r.trigger for r in work_rows(engine, task_id)} == {"schedule"}, zone
        assert fired == foretold[zone], zone
        # and the change really lies inside what fired
        assert fired[0][0] < change < fired[-1][0]
