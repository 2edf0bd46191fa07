"""Guarded connections: resolve a host once, decide each address, connect to exactly that one.

The egress policy itself is pure (:mod:`ordinaut.egress`); this is its shell. Every tool
connection over HTTP — ``http`` tools and the LLM base URL (httpx), MCP servers over
streamable HTTP (httpx2) — goes through a network backend that resolves the host with
``getaddrinfo`` (which also turns ``0x7f000001``, ``2130706433`` and ``0177.0.0.1`` into
``127.0.0.1``), decides each address and connects to an allowed one by its numeric form,
so the address decided is the address reached (no second lookup for DNS rebinding to
swap). TLS still checks the certificate against the host name of the URL.

A refusal is :class:`EgressRefused` — a non-retryable ToolError naming the policy — raised
before any byte is sent. Environment proxies (``HTTP_PROXY``) are not used for tool calls:
the policy must see the real destination.

:func:`policy_for` builds a process's policy from Settings once: the two variables plus
Ordinaut's own PostgreSQL, Redis and API addresses (resolved at that moment).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpcore2
import httpx
import httpx2

from ordinaut.config import Settings, api_host_port
from ordinaut.egress import (
    Address,
    EgressPolicy,
    Service,
    build_policy,
    normalise,
    webhook_policy,
)
from ordinaut.errors import ToolError


class EgressRefused(ToolError):
    """The egress policy refused a connection; retrying cannot help."""

    code = "egress_refused"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, field="egress")


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    found: list[Address] = []
    for info in infos:
        found.append(ipaddress.ip_address(str(info[4][0])))
    return list(dict.fromkeys(found))


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an address literal in any IPv4 form included)."""
    return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def permitted(policy: EgressPolicy, host: str, port: int, addresses: list[Address]) -> list[str]:
    """The allowed addresses, in order, as connectable strings; EgressRefused if none is."""
    allowed = [a for a in addresses if policy.decide(host, a, port).allowed]
    if not allowed and addresses:
        first = normalise(addresses[0])
        why = policy.decide(host, first, port).reason(first, port)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise EgressRefused(f"egress policy refused {where} ({first}): {why}")
    return [str(a) for a in allowed]


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only where the policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        error: Exception = httpcore.ConnectError(f"{host!r} has no address")
        for address in permitted(self.policy, host, port, addresses):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error


class AsyncGuardedBackend(httpcore2.AnyIOBackend):
    """httpcore2's anyio backend (MCP over HTTP), connecting only where the policy allows."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = _addresses(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        error: Exception = httpcore2.ConnectError(f"{host!r} has no address")
        for address in permitted(self.policy, host, port, addresses):
            try:
                return await super().connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore2.ConnectError as exc:
                error = exc
        raise error


class _Transport(httpx.HTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # httpx takes no network backend, so its connection pool is replaced by an equal one
        # that has ours
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


class _AsyncTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncGuardedBackend(policy),
        )


def transport(policy: EgressPolicy) -> httpx.HTTPTransport:
    """An httpx transport whose every connection the policy decides."""
    return _Transport(policy)


def async_transport(policy: EgressPolicy) -> httpx2.AsyncHTTPTransport:
    """The same for httpx2 (the MCP SDK's client)."""
    return _AsyncTransport(policy)


def _service(label: str, host: str | None, port: int) -> list[Service]:
    if not host:
        return []  # a Unix socket: no network address to guard
    try:
        addresses = resolve(host, port)
    except OSError:
        addresses = []  # not resolvable now: its name is guarded all the same
    return [Service(label, host, port, addresses)]


def _own_services(settings: Settings) -> list[Service]:
    db = urlsplit(settings.database_url)
    cache = urlsplit(settings.redis_url)
    api_host, api_port = api_host_port(settings.api_address)
    services = [
        *_service("PostgreSQL (DATABASE_URL)", db.hostname, db.port or 5432),
        *_service("Redis (REDIS_URL)", cache.hostname, cache.port or 6379),
        *_service("API (ORDINAUT_API_ADDRESS)", api_host, api_port),
    ]
    return services


@functools.lru_cache(maxsize=16)
def policy_for(settings: Settings) -> EgressPolicy:
    """The policy of ``settings``: its entries plus Ordinaut's own servers (cached)."""
    return build_policy(settings.egress_allow, settings.egress_deny, _own_services(settings))


@functools.lru_cache(maxsize=16)
def webhook_policy_for(settings: Settings) -> EgressPolicy:
    """Where this deployment's webhooks may go (:func:`ordinaut.egress.webhook_policy`)."""
    return webhook_policy(settings.allow_private_webhooks, _own_services(settings))
