"""The egress policy's decision, from tables: entries, specificity, built-in guards, own servers."""

from __future__ import annotations

import ipaddress

import pytest

from ordinaut.config import load_settings
from ordinaut.egress import (
    DEFAULT_POLICY,
    EgressPolicy,
    Service,
    build_policy,
    parse_entries,
)
from ordinaut.errors import ConfigError
from ordinaut.tools.guarded import EgressRefused, permitted

ip = ipaddress.ip_address

OWN = [
    Service("PostgreSQL (DATABASE_URL)", "127.0.0.1", 5432),
    Service("Redis (REDIS_URL)", "localhost", 6379, [ip("127.0.0.1"), ip("::1")]),
    Service("API (ORDINAUT_API_ADDRESS)", "0.0.0.0", 8080),
    Service("PostgreSQL (DATABASE_URL)", "db.internal", 5433, [ip("10.1.2.3")]),
]


def allowed(policy: EgressPolicy, host: str, address: str, port: int) -> bool:
    return policy.decide(host, ip(address), port).allowed


@pytest.mark.parametrize(
    ("host", "address", "port", "expected"),
    [
        # loopback, private and public networks are allowed by default: local tools are real
        ("127.0.0.1", "127.0.0.1", 8765, True),
        ("localhost", "::1", 8765, True),
        ("tools.lan", "192.168.1.20", 80, True),
        ("10.0.0.7", "10.0.0.7", 443, True),
        ("api.telegram.org", "149.154.167.220", 443, True),
        # link-local, cloud metadata and "this host" are refused
        ("169.254.169.254", "169.254.169.254", 80, False),
        ("metadata.google.internal", "169.254.169.254", 80, False),
        ("fe80::1", "fe80::1", 80, False),
        ("100.100.100.200", "100.100.100.200", 80, False),
        ("fd00:ec2::254", "fd00:ec2::254", 80, False),
        ("0.0.0.0", "0.0.0.0", 8765, False),
        ("::", "::", 8765, False),
        # the IPv4-mapped form is the IPv4 address it carries
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254", 80, False),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", 8765, True),
    ],
)
def test_defaults(host: str, address: str, port: int, expected: bool) -> None:
    assert allowed(DEFAULT_POLICY, host, address, port) is expected


@pytest.mark.parametrize(
    ("host", "address", "port", "expected"),
    [
        # PostgreSQL on 127.0.0.1:5432 guards the whole loopback range on 5432, both families
        ("127.0.0.1", "127.0.0.1", 5432, False),
        ("127.0.0.2", "127.0.0.2", 5432, False),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", 5432, False),
        ("localhost", "::1", 5432, False),
        ("127.0.0.1", "127.0.0.1", 5431, True),  # another port on loopback is a local tool
        ("localhost", "127.0.0.1", 6379, False),  # Redis, named
        ("127.0.0.1", "127.0.0.1", 8080, False),  # the API bound to 0.0.0.0
        ("10.1.2.3", "10.1.2.3", 5433, False),  # a remote PostgreSQL by its address
        ("db.internal", "10.9.9.9", 5433, False),  # ... and by its name, whatever it resolves to
        ("10.1.2.3", "10.1.2.3", 80, True),
    ],
)
def test_own_servers_are_guarded(host: str, address: str, port: int, expected: bool) -> None:
    assert allowed(build_policy(services=OWN), host, address, port) is expected


@pytest.mark.parametrize(
    ("allow", "deny", "host", "address", "port", "expected"),
    [
        ("", "127.0.0.2/32", "127.0.0.2", "127.0.0.2", 8765, False),
        ("", "127.0.0.2/32", "::ffff:127.0.0.2", "::ffff:127.0.0.2", 8765, False),
        ("", "::ffff:127.0.0.2", "127.0.0.2", "127.0.0.2", 8765, False),  # mapped entry
        ("", "127.0.0.2/32", "127.0.0.1", "127.0.0.1", 8765, True),
        ("", "evil.example", "evil.example", "10.0.0.1", 80, False),
        ("", "*.example.com", "a.b.example.com", "10.0.0.1", 80, False),
        ("", "*.example.com", "example.com", "10.0.0.1", 80, True),
        ("", "EXAMPLE.com.", "example.com", "10.0.0.1", 80, False),  # case, trailing dot
        ("", "127.0.0.1:9000", "127.0.0.1", "127.0.0.1", 9001, True),
        ("", "[::1]:9000", "::1", "::1", 9000, False),
        # an allow-list: deny everything, allow one name; the name is more specific
        ("api.telegram.org", "0.0.0.0/0 ::/0", "api.telegram.org", "149.154.167.220", 443, True),
        ("api.telegram.org", "0.0.0.0/0 ::/0", "example.org", "93.184.215.14", 443, False),
        # a longer prefix beats a shorter one; a port beats no port; deny wins a tie
        ("10.0.0.5", "10.0.0.0/8", "10.0.0.5", "10.0.0.5", 80, True),
        ("10.0.0.0/8", "10.0.0.5", "10.0.0.5", "10.0.0.5", 80, False),
        ("10.0.0.0/8:443", "10.0.0.5", "10.0.0.5", "10.0.0.5", 443, True),
        ("10.0.0.0/8", "10.0.0.0/8", "10.0.0.5", "10.0.0.5", 80, False),
        # a guard yields only to an ALLOW entry at least as specific as itself
        ("0.0.0.0/0", "", "169.254.169.254", "169.254.169.254", 80, False),
        ("169.254.169.254", "", "169.254.169.254", "169.254.169.254", 80, True),
        ("169.254.0.0/16", "", "169.254.1.1", "169.254.1.1", 80, True),
        ("metadata.google.internal", "", "metadata.google.internal", "169.254.169.254", 80, True),
        ("127.0.0.1", "", "127.0.0.1", "127.0.0.1", 5432, False),  # no port: PostgreSQL stays
        ("127.0.0.1:5432", "", "127.0.0.1", "127.0.0.1", 5432, True),
        ("127.0.0.1:5432", "", "127.0.0.2", "127.0.0.2", 5432, False),
    ],
)
def test_entries(allow: str, deny: str, host: str, address: str, port: int, expected: bool) -> None:
    policy = build_policy(allow, deny, OWN)
    assert allowed(policy, host, address, port) is expected


def test_a_refusal_names_the_policy_and_how_to_allow() -> None:
    policy = build_policy(deny="127.0.0.2/32", services=OWN)
    denied = policy.decide("127.0.0.2", ip("127.0.0.2"), 80)
    assert denied.reason(ip("127.0.0.2"), 80) == (
        "denied by ORDINAUT_EGRESS_DENY entry '127.0.0.2/32'"
    )
    guarded = policy.decide("localhost", ip("::1"), 5432)
    assert guarded.reason(ip("::1"), 5432) == (
        "127.0.0.1:5432 is Ordinaut's own PostgreSQL (DATABASE_URL); "
        "to allow it add '[::1]:5432' to ORDINAUT_EGRESS_ALLOW"
    )
    metadata = policy.decide("169.254.169.254", ip("169.254.169.254"), 80)
    assert "link-local" in metadata.reason(ip("169.254.169.254"), 80)


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.1/8",  # host bits set
        "10.0.0.0/33",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "host:port",
        "[::1",
        "[::1]x",
        "bad_host!",
        "0x7f000001",  # an IPv4 form, not a name: write 127.0.0.1
        "2130706433",
        "*",
        "a..b",
    ],
)
def test_bad_entries_are_refused_naming_the_variable(entry: str) -> None:
    with pytest.raises(ValueError, match="entry"):
        parse_entries(entry, "X")
    with pytest.raises(ConfigError, match="ORDINAUT_EGRESS_DENY") as caught:
        load_settings(
            DATABASE_URL="postgresql://h/d", REDIS_URL="redis://h", egress_deny=f"::1,{entry}"
        )
    assert caught.value.field == "ORDINAUT_EGRESS_DENY"


def test_entries_are_split_on_commas_and_spaces() -> None:
    rules = parse_entries(" 10.0.0.0/8, api.example.com  [::1]:8080,,", "X")
    assert [r.text for r in rules] == ["10.0.0.0/8", "api.example.com", "[::1]:8080"]
    assert [r.port for r in rules] == [None, None, 8080]


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:x", "u@h:1", ":8080", "h:1/x"])
def test_api_address_must_be_host_and_port(value: str) -> None:
    with pytest.raises(ConfigError, match="ORDINAUT_API_ADDRESS"):
        load_settings(DATABASE_URL="postgresql://h/d", REDIS_URL="redis://h", api_address=value)


def test_a_name_connects_only_to_the_addresses_decided() -> None:
    """DNS rebinding: of what a name resolved to, only allowed addresses are connected to."""
    policy = build_policy(deny="127.0.0.2")
    resolved = [ip("127.0.0.2"), ip("169.254.169.254"), ip("93.184.215.14"), ip("::1")]
    assert permitted(policy, "rebind.example", 80, resolved) == ["93.184.215.14", "::1"]
    with pytest.raises(EgressRefused, match=r"rebind\.example:80 \(127\.0\.0\.2\)") as caught:
        permitted(policy, "rebind.example", 80, resolved[:2])
    assert not caught.value.retryable
    assert caught.value.to_dict()["code"] == "egress_refused"
