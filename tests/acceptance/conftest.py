"""A whole Ordinaut (API, beat, worker processes) per test, on the test's database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ordinaut.config import Settings
from tests.support import Proc, bootstrap_admin, free_port, start_api, start_beat, start_worker


@dataclass
class Stack:
    settings: Settings
    api: httpx.Client
    token: str
    procs: dict[str, Proc]
    base_url: str


@pytest.fixture
def stack(settings: Settings, log_dir: Path) -> Iterator[Stack]:
    token = bootstrap_admin(settings)
    port = free_port()
    procs: dict[str, Proc] = {}
    try:
        procs["api"] = start_api(settings, log_dir, port)
        procs["beat"] = start_beat(settings, log_dir)
        procs["worker"] = start_worker(settings, log_dir)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            yield Stack(settings, client, token, procs, base)
    finally:
        for proc in reversed(list(procs.values())):
            proc.stop()
