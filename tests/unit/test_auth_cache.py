"""Token lookups remembered briefly; failed authentications throttled per client address."""

from __future__ import annotations

import uuid

import pytest

from ordinaut.errors import RateLimited
from ordinaut.service.auth import Principal
from ordinaut.service.auth_cache import FailureThrottle, TokenCache

ALICE = Principal(uuid.uuid4(), "alice", frozenset({"tasks:read"}))
BOB = Principal(uuid.uuid4(), "bob", frozenset())


def test_answers_found_or_not_are_remembered_for_ttl_seconds() -> None:
    cache = TokenCache(ttl=2.0)
    cache.put("h-alice", ALICE, now=100.0)
    cache.put("h-unknown", None, now=100.0)
    hit, miss = cache.get("h-alice", now=101.9), cache.get("h-unknown", now=101.9)
    assert hit is not None and hit.principal == ALICE
    assert miss is not None and miss.principal is None
    assert cache.get("h-alice", now=102.0) is None  # expired: look it up again
    assert cache.get("h-never", now=100.0) is None


def test_forgetting_an_agent_drops_only_its_entries() -> None:
    cache = TokenCache(ttl=60.0)
    cache.put("h-alice-1", ALICE, now=0.0)
    cache.put("h-alice-2", ALICE, now=0.0)
    cache.put("h-bob", BOB, now=0.0)
    cache.put("h-unknown", None, now=0.0)
    cache.forget_agent(ALICE.agent_id)
    assert cache.get("h-alice-1", 1.0) is None and cache.get("h-alice-2", 1.0) is None
    assert cache.get("h-bob", 1.0) is not None and cache.get("h-unknown", 1.0) is not None


def test_tokens_valid_recently_are_trusted_longer_than_answers_are_kept() -> None:
    cache = TokenCache(ttl=2.0, trust=600.0)
    cache.put("h-alice", ALICE, now=0.0)
    cache.put("h-unknown", None, now=0.0)
    assert cache.get("h-alice", now=5.0) is None  # look it up again...
    assert cache.recently_valid("h-alice", now=599.0)  # ...even from a throttled address
    assert not cache.recently_valid("h-alice", now=600.0)
    assert not cache.recently_valid("h-unknown", now=1.0)
    cache.put("h-alice", None, now=10.0)  # revoked elsewhere: trust ends with the lookup
    assert not cache.recently_valid("h-alice", now=11.0)


def test_a_zero_ttl_remembers_no_answer_and_size_is_bounded() -> None:
    off = TokenCache(ttl=0.0)
    off.put("h", ALICE, now=0.0)
    assert off.get("h", now=0.0) is None
    small = TokenCache(ttl=60.0, max_entries=3)
    for i in range(10):
        small.put(f"h{i}", None, now=float(i))
    assert [small.get(f"h{i}", 10.0) is not None for i in range(10)] == [False] * 7 + [True] * 3


def test_an_address_past_its_failures_waits_for_the_window_to_end() -> None:
    throttle = FailureThrottle(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        throttle.check("10.0.0.1", now=t)
        throttle.failed("10.0.0.1", now=t)
    with pytest.raises(RateLimited) as caught:
        throttle.check("10.0.0.1", now=30.2)
    assert caught.value.retry_after == 30  # the window started at 0
    throttle.check("10.0.0.2", now=30.2)  # another address is not affected
    throttle.check("10.0.0.1", now=60.0)  # a new window
    throttle.failed("10.0.0.1", now=60.0)
    throttle.check("10.0.0.1", now=61.0)


def test_no_address_or_a_zero_limit_never_throttles() -> None:
    off = FailureThrottle(limit=0)
    unknown = FailureThrottle(limit=1)
    for t in range(5):
        off.failed("10.0.0.1", now=float(t))
        off.check("10.0.0.1", now=float(t))
        unknown.failed(None, now=float(t))
        unknown.check(None, now=float(t))
