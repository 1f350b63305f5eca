"""The address rule: every internal range refused, however the host is spelt.

The spellings are checked against the C library's own ``inet_aton`` (what
``getaddrinfo`` uses for numeric hosts), so the guard reads ``0177.0.0.1`` exactly as
the connection would.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

from bot.links.egress import (
    BadHostError,
    EgressPolicy,
    parse_host,
    parse_ipv4_like_inet_aton,
)

DEFAULT = EgressPolicy()

INTERNAL = {
    "0.0.0.0": "this network",
    "0.1.2.3": "this network",
    "10.0.0.1": "private",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.169.254": "link-local",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.0.0.9": "IETF protocol assignments",
    "192.0.2.1": "documentation",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.1.1": "private",
    "198.18.0.1": "benchmarking",
    "198.19.255.255": "benchmarking",
    "198.51.100.7": "documentation",
    "203.0.113.9": "documentation",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::": "unspecified",
    "::1": "loopback",
    "::127.0.0.1": "IPv4-compatible",
    "::8.8.8.8": "IPv4-compatible",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "64:ff9b::7f00:1": "NAT64 wrapping loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 wrapping link-local",
    "64:ff9b:1::1": "local NAT64",
    "100::1": "discard",
    "2001::1": "Teredo",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "2002:7f00:1::1": "6to4 wrapping loopback",
    "2002:a00:1::1": "6to4 wrapping private",
    "fc00::1": "unique local (private)",
    "fd12:3456::1": "unique local (private)",
    "fe80::1": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
}

PUBLIC = (
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "192.0.3.1",
    "198.20.0.1",
    "223.255.255.254",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
)


@pytest.mark.parametrize(("text", "reason"), INTERNAL.items())
def test_every_internal_range_is_refused_with_its_reason(text: str, reason: str) -> None:
    assert DEFAULT.address_refusal(ip_address(text)) == reason


@pytest.mark.parametrize("text", PUBLIC)
def test_public_unicast_is_allowed(text: str) -> None:
    assert DEFAULT.address_refusal(ip_address(text)) is None


SPELLINGS = {
    "127.0.0.1": "127.0.0.1",
    "2130706433": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0x7f.0.0.1": "127.0.0.1",
    "0X7F.0.0.01": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.1": "127.0.0.1",
    "0": "0.0.0.0",
    "012.0x0.0.01": "10.0.0.1",
    "167772161": "10.0.0.1",
    "169.254.43518": "169.254.169.254",
    "0xa9fea9fe": "169.254.169.254",
    "2852039166": "169.254.169.254",
    "0251.0376.0251.0376": "169.254.169.254",
}


@pytest.mark.parametrize(("spelling", "meant"), SPELLINGS.items())
def test_ip_spellings_are_read_as_the_c_library_reads_them(spelling: str, meant: str) -> None:
    assert parse_ipv4_like_inet_aton(spelling) == IPv4Address(meant)
    assert socket.inet_aton(spelling) == IPv4Address(meant).packed
    assert DEFAULT.address_refusal(IPv4Address(meant)) is not None


NOT_ADDRESSES = (
    "08.0.0.1",
    "1.2.3.4.5",
    "256.0.0.1",
    "1.2.65536",
    "0x1.0x100.0.0",
    "1..2",
    "4294967296",
)


@pytest.mark.parametrize("spelling", NOT_ADDRESSES)
def test_what_the_c_library_does_not_read_as_an_address_is_not_one_here(spelling: str) -> None:
    assert parse_ipv4_like_inet_aton(spelling) is None
    with pytest.raises(OSError):
        socket.inet_aton(spelling)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[::1]", IPv6Address("::1")),
        ("::1", IPv6Address("::1")),
        ("[fe80::1%eth0]", IPv6Address("fe80::1")),
        ("[::ffff:127.0.0.1]", IPv6Address("::ffff:7f00:1")),
        ("[0:0:0:0:0:0:0:1]", IPv6Address("::1")),
        ("0x7f000001", IPv4Address("127.0.0.1")),
    ],
)
def test_hosts_in_brackets_and_with_zones_are_read_as_addresses(host: str, address: object) -> None:
    parsed = parse_host(host)
    assert parsed == address
    assert parsed is not None and DEFAULT.address_refusal(parsed) is not None


@pytest.mark.parametrize("host", ["localhost", "example.com", "a-b.example.", "_dmarc.example.com"])
def test_names_are_left_to_the_resolver(host: str) -> None:
    assert parse_host(host) is None


@pytest.mark.parametrize(
    "host", ["", "[127.0.0.1]", "[::1", "exa mple.com", "ex\u00e4mple.com", "a/b", "[:::1]"]
)
def test_what_is_neither_address_nor_name_is_a_bad_host(host: str) -> None:
    with pytest.raises(BadHostError):
        parse_host(host)


def test_only_the_allowed_ports_pass() -> None:
    assert DEFAULT.port_refusal(80) is None
    assert DEFAULT.port_refusal(443) is None
    assert DEFAULT.port_refusal(22) == "port 22 not allowed"
    assert DEFAULT.port_refusal(8080) == "port 8080 not allowed"
    assert EgressPolicy(allowed_ports=frozenset({8080})).port_refusal(8080) is None


def test_the_operator_can_allow_a_network_and_only_that_network() -> None:
    policy = EgressPolicy(allowed_networks=(ip_network("127.0.0.0/8"), ip_network("fd00::/64")))
    assert policy.address_refusal(ip_address("127.0.0.1")) is None
    assert policy.address_refusal(ip_address("::ffff:127.0.0.1")) is None
    assert policy.address_refusal(ip_address("fd00::5")) is None
    assert policy.address_refusal(ip_address("::1")) == "loopback"
    assert policy.address_refusal(ip_address("10.0.0.1")) == "private"
    assert policy.address_refusal(ip_address("fd00:1::5")) == "unique local (private)"
