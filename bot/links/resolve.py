"""A host resolved once, every answer checked: the addresses a connection is pinned to.

DNS rebinding answers a check with a public address and the connection with an internal
one; resolving once and connecting to the very address that was checked closes it
(issue 25). A name with any internal answer is refused outright rather than connected
through its public answers: a name that mixes them is a probe or a misconfiguration,
and refusing is the choice that cannot be turned into a connection inward.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.links.egress import EgressPolicy, IPAddress, as_address, parse_host

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""Host and port to their addresses; injectable so tests can play a rebinding DNS."""


class RefusedTargetError(Exception):
    """The target is refused by the policy (a port, or an internal address)."""

    def __init__(self, *, reason: str, address: IPAddress | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


class UnresolvableError(Exception):
    """The name has no addresses, or the resolver failed."""


@dataclass(frozen=True)
class CheckedTarget:
    """Addresses of one host, all allowed, in the order the resolver gave them."""

    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The C library's answers (``/etc/hosts``, then DNS), through the event loop."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as error:
        raise UnresolvableError(str(error)) from error
    return [as_address(str(answer[4][0])) for answer in answers]


async def check_target(
    policy: EgressPolicy, host: str, port: int, *, resolver: Resolver, resolve_seconds: float
) -> CheckedTarget:
    """The allowed addresses to connect to for ``host``/``port``, resolved once.

    The port is checked first so a refused port costs no lookup; an address spelling
    (``0x7f000001``, ``[::1]``) is read without the resolver.

    Raises:
        RefusedTargetError: the port, or any of the addresses, is refused.
        UnresolvableError: no answer, or none before ``resolve_seconds``.
    """
    port_reason = policy.port_refusal(port)
    if port_reason is not None:
        raise RefusedTargetError(reason=port_reason)
    literal = parse_host(host)
    if literal is not None:
        addresses: Sequence[IPAddress] = [literal]
    else:
        try:
            async with asyncio.timeout(resolve_seconds):
                addresses = await resolver(host, port)
        except TimeoutError as error:
            raise UnresolvableError(f"no answer in {resolve_seconds:g} s") from error
    if not addresses:
        raise UnresolvableError("no addresses")
    for address in addresses:
        reason = policy.address_refusal(address)
        if reason is not None:
            raise RefusedTargetError(reason=reason, address=address)
    return CheckedTarget(tuple(dict.fromkeys(addresses)))
