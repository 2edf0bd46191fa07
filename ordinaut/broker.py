"""Celery's Redis transport, with one Redis client per channel instead of one per command.

kombu 5.5 to 5.7's Redis ``Channel`` builds a new ``redis.Redis`` object (over the same
connection pool) for every publish and every acknowledgement (``conn_or_acquire`` →
``_create_client``); with redis-py 8 each one copies some 170 response callbacks, which
measured about half a millisecond of CPU per message in beat and in a worker's main
process. Reusing one client is what redis-py intends (a client is a thread-safe handle on
its pool); it is rebuilt when kombu replaces the pool (after a fork or a reconnect).

``_create_client`` is private to kombu: this override is the whole change, and the test
suite's end-to-end runs (publish, consume, acknowledge, redeliver) exercise it. Selected by
the ``broker_transport`` setting in :mod:`ordinaut.celery`.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """A Redis channel that keeps its synchronous client."""

    _ordinaut_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        if self._pool is None and self.connection.client is None:
            # closing after the broker went away, with messages still unacknowledged: kombu
            # would build a pool from a connection it already let go (an AttributeError that
            # kills the worker); a connection error is what its close path knows to ignore
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        client = self._ordinaut_client
        if client is None or client.connection_pool is not self.pool:
            client = self._ordinaut_client = super()._create_client()  # type: ignore[no-untyped-call]
        return client


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
