"""Which addresses and ports a link may reach: public unicast only, on 80/443 by default.

A link makes the server connect somewhere, so an address that reaches the host itself,
its network or a cloud metadata service (server-side request forgery) must be refused
however the link spells it (issue 25). ``ipaddress``'s ``is_global`` is the base, but it
calls multicast, site-local ``fec0::/10``, IPv4-compatible ``::a.b.c.d``, NAT64
``64:ff9b::/96`` and 6to4 ``2002::/16`` global even when they carry ``127.0.0.1``, so
those are closed here by name; addresses that wrap an IPv4 address are judged by the
IPv4 address they carry.

Host spellings are read the way the C library's ``inet_aton`` (and so ``getaddrinfo``)
reads them: ``2130706433``, ``0177.0.0.1``, ``0x7f.0.0.1`` and ``127.1`` all are
127.0.0.1. The proxy still checks every address a name resolves to, so a spelling this
module does not know cannot slip through: it is either resolved and checked, or fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
)
from typing import Final

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

DEFAULT_PORTS: Final = frozenset({80, 443})

_V4_CLOSED: Final = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
    )
)
"""IPv4 ranges refused, with the reason logged; ``is_global`` backs them up."""

_V6_CLOSED: Final = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b:1::/48", "local NAT64"),
        ("100::/64", "discard"),
        ("2001::/32", "Teredo"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
"""IPv6 ranges refused outright, whatever else they might carry."""

_NAT64: Final = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST: Final = IPv6Network("2000::/3")

_V4_PART: Final = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?")


class BadHostError(ValueError):
    """A request named a host that is neither an IP address nor a DNS name."""


def parse_ipv4_like_inet_aton(text: str) -> IPv4Address | None:
    """Read ``text`` as ``inet_aton`` does, or return ``None`` when it is not an address.

    One to four parts, each decimal, octal (a leading ``0``) or hex (``0x``); the last
    part fills the bytes left, so ``127.1`` is 127.0.0.1 and ``2130706433`` is too.
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_V4_PART.fullmatch(part) for part in parts):
        return None
    values = [_part_value(part) for part in parts]
    head, last = values[:-1], values[-1]
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return IPv4Address(number)


def _part_value(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)
    return int(part)


def parse_host(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, or ``None`` when it is a DNS name to resolve.

    IPv6 may come in brackets and with a zone id (``[fe80::1%eth0]``); the zone is
    dropped, since which interface does not change whether an address is internal.

    Raises:
        BadHostError: ``host`` is empty, not ASCII, or neither an address nor a name.
    """
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in text:
        try:
            return IPv6Address(text.split("%", 1)[0])
        except ValueError as error:
            raise BadHostError(f"not an IPv6 address: {host[:80]!r}") from error
    if host != text:
        raise BadHostError(f"brackets around a non-IPv6 host: {host[:80]!r}")
    address = parse_ipv4_like_inet_aton(text)
    if address is not None:
        return address
    if len(text) > 253 or not _HOSTNAME.fullmatch(text):
        raise BadHostError(f"not a host name: {host[:80]!r}")
    return None


def carried_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


@dataclass(frozen=True)
class EgressPolicy:
    """What link connections may reach: public addresses on ``allowed_ports``.

    ``allowed_networks`` is the operator's override (``links.allowed_networks``): an
    address inside one is allowed even when internal, which is also how tests reach
    127.0.0.1. It is matched against the address and the IPv4 address it carries.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_ports: frozenset[int] = field(default=DEFAULT_PORTS)

    def port_refusal(self, port: int) -> str | None:
        """Why ``port`` is refused, or ``None`` when it is allowed."""
        return None if port in self.allowed_ports else f"port {port} not allowed"

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or ``None`` when a link may connect to it."""
        carried = carried_ipv4(address) if isinstance(address, IPv6Address) else None
        if self._operator_allows(address) or (
            carried is not None and self._operator_allows(carried)
        ):
            return None
        if isinstance(address, IPv4Address):
            return _ipv4_refusal(address)
        return _ipv6_refusal(address, carried)

    def _operator_allows(self, address: IPAddress) -> bool:
        return any(
            address.version == network.version and address in network
            for network in self.allowed_networks
        )


def _ipv4_refusal(address: IPv4Address) -> str | None:
    for network, why in _V4_CLOSED:
        if address in network:
            return why
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not global"
    return None


def _ipv6_refusal(address: IPv6Address, carried: IPv4Address | None) -> str | None:
    if address.ipv4_mapped is not None:
        inner = _ipv4_refusal(address.ipv4_mapped)
        return None if inner is None else f"IPv4-mapped {inner}"
    for network, why in _V6_CLOSED:
        if address in network:
            return why
    if carried is not None:
        inner = _ipv4_refusal(carried)
        kind = "NAT64" if address in _NAT64 else "6to4"
        return None if inner is None else f"{kind} wrapping {inner}"
    if address not in _GLOBAL_UNICAST or not address.is_global or address.is_reserved:
        return "not global unicast"
    return None


def as_address(text: str) -> IPAddress:
    """An address as ``getaddrinfo`` gives it back (IPv6 may carry a zone id)."""
    return ip_address(text.split("%", 1)[0])
