"""The egress policy: which addresses a tool call (or a webhook) may connect to. Pure, no I/O.

A connection is decided on the address it would really reach — the host name already
resolved by the caller (:mod:`ordinaut.tools.guarded` resolves once and connects to exactly
the address decided here, so DNS rebinding cannot swap it) — with the port and the host
name the URL named.

Entries (``ORDINAUT_EGRESS_ALLOW`` / ``ORDINAUT_EGRESS_DENY``, separated by commas or
spaces): a network ``10.0.0.0/8``, an address ``127.0.0.2`` or ``::1``, a host name
``api.example.com`` or ``*.example.com`` (its subdomains), each optionally with a port:
``127.0.0.1:5432``, ``[::1]:8080``, ``tools.lan:443``.

The decision, in order:

1. the most specific matching ALLOW or DENY entry decides — an entry with a port beats one
   without; a host name beats a ``*.`` pattern, which beats a network; a longer prefix beats a
   shorter one; on a tie DENY wins;
2. the built-in guards refuse, unless a matching ALLOW entry is at least as specific as the
   guard: link-local ``169.254.0.0/16`` and ``fe80::/10`` (cloud metadata lives there), the
   other metadata addresses, "this host" ``0.0.0.0/8`` and ``::``, and Ordinaut's own API,
   PostgreSQL and Redis (address and port; on loopback the whole loopback range on that
   port) — so ``ALLOW=0.0.0.0/0`` does not open the metadata service, ``169.254.169.254``
   does;
3. everything else is allowed: the internet, loopback and private networks (local tools are
   a real use).

IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are decided as the IPv4 address they
carry, in entries and in connections alike.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_VARIABLE = "ORDINAUT_EGRESS_ALLOW"
DENY_VARIABLE = "ORDINAUT_EGRESS_DENY"

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
_NUMERIC = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")  # a last label like this is an IPv4 form
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_LOOPBACK: tuple[Network, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
)


@dataclass(frozen=True)
class Rule:
    """One entry: a network or a host name (``*.`` for subdomains), maybe with a port.

    ``source`` says where it came from: a variable name, or why a built-in guard exists.
    """

    text: str
    source: str
    network: Network | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, host: str, address: Address, port: int) -> bool:
        """Whether a connection to ``address:port`` (named ``host`` in the URL) is covered."""
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        assert self.host is not None
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Larger is more specific: (has a port, kind, prefix length or label count)."""
        has_port = int(self.port is not None)
        if self.network is not None:
            return (has_port, 0, self.network.prefixlen)
        assert self.host is not None
        if self.host.startswith("*."):
            return (has_port, 1, self.host.count("."))
        return (has_port, 2, 0)


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and the rule that decided (None: the default, allowed)."""

    allowed: bool
    rule: Rule | None = None

    def reason(self, address: Address, port: int) -> str:
        """Why, in words, with what to do about a refusal."""
        if self.rule is None:
            return "allowed by default"
        if self.allowed:
            return f"allowed by {self.rule.source} entry {self.rule.text!r}"
        if self.rule.source == DENY_VARIABLE:
            return f"denied by {DENY_VARIABLE} entry {self.rule.text!r}"
        shown = f"[{address}]" if address.version == 6 and self.rule.port else str(address)
        example = f"{shown}:{port}" if self.rule.port is not None else shown
        return f"{self.rule.source}; to allow it add {example!r} to {ALLOW_VARIABLE}"


@dataclass(frozen=True)
class EgressPolicy:
    """ALLOW and DENY entries plus the built-in guards; hashable, so a process can cache it."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    guards: tuple[Rule, ...] = ()

    def decide(self, host: str, address: Address, port: int) -> Decision:
        """The decision for a connection to ``address:port``, named ``host`` in the URL."""
        return decide(self, host, address, port)


def normalise(address: Address) -> Address:
    """The address a connection reaches: an IPv4-mapped IPv6 address is its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normalise_network(network: Network) -> Network:
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def host_key(host: str) -> str:
    """A host name as entries compare it: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def decide(policy: EgressPolicy, host: str, address: Address, port: int) -> Decision:
    """Decide one connection (see the module docstring for the order)."""
    address, host = normalise(address), host_key(host)
    entries = [(r, True) for r in policy.allow if r.matches(host, address, port)]
    entries += [(r, False) for r in policy.deny if r.matches(host, address, port)]
    chosen = max(entries, key=lambda e: (e[0].specificity, not e[1]), default=None)
    if chosen is not None and not chosen[1]:
        return Decision(False, chosen[0])
    guards = [r for r in policy.guards if r.matches(host, address, port)]
    guard = max(guards, key=lambda r: r.specificity, default=None)
    if guard is not None and (chosen is None or chosen[0].specificity < guard.specificity):
        return Decision(False, guard)
    return Decision(True, chosen[0] if chosen else None)


def parse_entry(text: str, source: str) -> Rule:
    """One entry as a Rule; ValueError says what is wrong with it."""
    target, port = _split_port(text)
    try:
        network = ipaddress.ip_network(target, strict=True)
    except ValueError as exc:
        if "/" in target or ":" in target:  # meant as a network or an IPv6 address
            raise ValueError(f"entry {text!r}: {exc}") from None
    else:
        return Rule(text, source, network=_normalise_network(network), port=port)
    host = host_key(target)
    last = host.rsplit(".", 1)[-1]
    if not _HOST.match(host) or _NUMERIC.match(last):
        raise ValueError(
            f"entry {text!r} is not a network (10.0.0.0/8), an address, or a host name "
            "(api.example.com, *.example.com), each with an optional :port"
        )
    return Rule(text, source, host=host, port=port)


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"entry {text!r}: write an IPv6 address with a port as [::1]:8080")
        return inner, _port(text, rest[1:]) if rest else None
    if text.count(":") == 1:
        target, _, port = text.partition(":")
        return target, _port(text, port)
    return text, None


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"entry {text!r}: the port must be a number from 1 to 65535")
    return int(value)


def parse_entries(text: str, source: str) -> tuple[Rule, ...]:
    """Every entry of a variable's value (commas or spaces between entries)."""
    return tuple(parse_entry(item, source) for item in re.split(r"[,\s]+", text) if item)


def _network(text: str, why: str) -> Rule:
    return Rule(text, why, network=ipaddress.ip_network(text))


# reaching these from a tool is almost always an attack (metadata holds cloud credentials)
BUILTIN_GUARDS: tuple[Rule, ...] = (
    _network("169.254.0.0/16", "169.254.0.0/16 is link-local, where cloud metadata lives"),
    _network("fe80::/10", "fe80::/10 is link-local"),
    _network("100.100.100.200/32", "100.100.100.200 is a cloud metadata address"),
    _network("fd00:ec2::254/128", "fd00:ec2::254 is a cloud metadata address"),
    _network("0.0.0.0/8", "0.0.0.0/8 means this host"),
    _network("::/128", ":: means this host"),
)


@dataclass(frozen=True)
class Service:
    """One of Ordinaut's own servers: what it is, the host named and the addresses it has."""

    label: str
    host: str
    port: int
    addresses: Sequence[Address] = ()


def service_guards(service: Service) -> tuple[Rule, ...]:
    """Guards for one of Ordinaut's own servers: its name and addresses, on its port.

    A loopback or unspecified (``0.0.0.0``) address guards the whole loopback range on that
    port: a server listening on 127.0.0.1 may well answer on 127.0.0.2 too.
    """
    why = f"{service.host}:{service.port} is Ordinaut's own {service.label}"
    rules: list[Rule] = []
    name = host_key(service.host)
    try:
        named: list[Address] = [ipaddress.ip_address(name)]
    except ValueError:
        named = []
        if _HOST.match(name):
            rules.append(Rule(service.host, why, host=name, port=service.port))
    for address in {normalise(a) for a in [*named, *service.addresses]}:
        if address.is_loopback or address.is_unspecified:
            networks: Iterable[Network] = _LOOPBACK
        else:
            networks = [ipaddress.ip_network(address)]
        rules += [Rule(str(n), why, network=n, port=service.port) for n in networks]
    return tuple(dict.fromkeys(rules))


def build_policy(allow: str = "", deny: str = "", services: Iterable[Service] = ()) -> EgressPolicy:
    """The policy from the two variables' values and Ordinaut's own servers."""
    guards = list(BUILTIN_GUARDS)
    for service in services:
        guards += service_guards(service)
    return EgressPolicy(
        allow=parse_entries(allow, ALLOW_VARIABLE),
        deny=parse_entries(deny, DENY_VARIABLE),
        guards=tuple(dict.fromkeys(guards)),
    )


DEFAULT_POLICY = build_policy()
"""The built-in guards alone (no entries, no own servers known)."""


# webhook receivers are people's servers on the internet: loopback, private, shared (CGNAT)
# and link-local networks are refused unless ORDINAUT_ALLOW_PRIVATE_WEBHOOKS is set
WEBHOOK_PRIVATE = (
    "127.0.0.0/8 ::1 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 fc00::/7 "
    "169.254.0.0/16 fe80::/10"
)
WEBHOOK_VARIABLE = "ORDINAUT_ALLOW_PRIVATE_WEBHOOKS"


def webhook_policy(allow_private: bool, services: Iterable[Service] = ()) -> EgressPolicy:
    """Where webhooks may be delivered: the built-in guards and Ordinaut's own servers, plus
    (unless ``allow_private``) every loopback, private and link-local network."""
    deny = "" if allow_private else WEBHOOK_PRIVATE
    policy = build_policy("", "", services)
    rules = parse_entries(deny, f"{WEBHOOK_VARIABLE} is not set")
    return EgressPolicy(allow=policy.allow, deny=(*policy.deny, *rules), guards=policy.guards)
