"""The egress proxy with real clients on 127.0.0.1: what it forwards, what it refuses,
and that a refused target's listener never sees a connection.

Targets are local listeners on free ports, so the policies here allow those ports;
the refusals asserted are then the address rule's, not the port rule's. The hostile
targets on ports 80/443 with the default policy, including 10.0.0.1 and
169.254.169.254, run in a private network namespace (``test_hostile_targets.py``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, ip_network
from pathlib import Path

import httpx
import pytest

from bot.links.egress import EgressPolicy, IPAddress
from bot.links.proxy import EgressProxy, Refusal
from bot.links.resolve import UnresolvableError
from tests.support.egress import (
    ask_proxy,
    listening,
    listening_tls,
    open_tunnel,
    redirect_response,
    self_signed_certificate,
)

LOOPBACK = (ip_network("127.0.0.0/8"),)
QUICK = 0.5
"""A refusal is answered well inside this many seconds (it is ~1 ms on a laptop)."""


def _proxy(policy: EgressPolicy, **options: object) -> EgressProxy:
    settings: dict[str, object] = {"connect_timeout": 2.0, "idle_timeout": 2.0, **options}
    return EgressProxy(policy, **settings)  # type: ignore[arg-type]


def _client(proxy: EgressProxy, *, follow: bool = False) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy.url, trust_env=False, follow_redirects=follow)


async def test_a_plain_request_to_an_allowed_network_is_forwarded_in_origin_form() -> None:
    async with listening("127.0.0.1") as server:
        policy = EgressPolicy(LOOPBACK, frozenset({server.port}))
        async with _proxy(policy) as proxy, _client(proxy) as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/song.mp3?id=7")
    assert (response.status_code, response.text) == (200, "ok")
    assert server.paths == ["/song.mp3?id=7"]
    assert proxy.refusals == []


async def test_a_tunnel_to_an_allowed_network_relays_bytes_both_ways() -> None:
    async with listening("127.0.0.1", echo=True) as echo:
        policy = EgressPolicy(LOOPBACK, frozenset({echo.port}))
        async with _proxy(policy) as proxy:
            status, reader, writer = await open_tunnel(proxy.url, f"127.0.0.1:{echo.port}")
            writer.write(b"ping")
            await writer.drain()
            echoed = await asyncio.wait_for(reader.readexactly(4), 5)
            writer.close()
    assert (status, echoed, echo.connections) == (200, b"ping", 1)


LOOPBACK_SPELLINGS = ("127.0.0.1", "[::1]", "2130706433", "0x7f000001", "0177.0.0.1", "localhost")


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_however_spelt_is_refused_with_no_connection(host: str) -> None:
    async with listening("127.0.0.1") as v4, listening("::1", v4.port) as v6:
        async with _proxy(EgressPolicy(allowed_ports=frozenset({v4.port}))) as proxy:
            plain = await ask_proxy(
                proxy.url, f"GET http://{host}:{v4.port}/?token=secret HTTP/1.1\r\n\r\n".encode()
            )
            started = time.perf_counter()
            tunnel_status, _, writer = await open_tunnel(proxy.url, f"{host}:{v4.port}")
            tunnel_seconds = time.perf_counter() - started
            writer.close()
    assert (plain.status, tunnel_status) == (403, 403)
    assert plain.seconds < QUICK and tunnel_seconds < QUICK
    assert v4.connections + v6.connections == 0
    assert [refusal.reason for refusal in proxy.refusals] == ["loopback", "loopback"]


async def test_httpx_gets_the_refusal_as_a_403_or_a_proxy_error() -> None:
    async with listening("127.0.0.1") as server:
        async with _proxy(EgressPolicy(allowed_ports=frozenset({server.port}))) as proxy:
            async with _client(proxy) as client:
                plain = await client.get(f"http://localhost:{server.port}/")
                with pytest.raises(httpx.ProxyError, match="403"):
                    await client.get(f"https://localhost:{server.port}/")
    assert plain.status_code == 403
    assert server.connections == 0


async def test_a_redirect_to_an_internal_address_is_refused_at_the_second_hop() -> None:
    async with listening("127.0.0.1") as internal:
        inward = redirect_response(f"http://127.0.0.1:{internal.port}/admin")
        async with listening("127.0.0.2", internal.port, lambda _path: inward) as public:
            policy = EgressPolicy((ip_network("127.0.0.2/32"),), frozenset({internal.port}))
            async with _proxy(policy) as proxy, _client(proxy, follow=True) as client:
                response = await client.get(f"http://127.0.0.2:{public.port}/song")
    assert response.status_code == 403
    assert len(response.history) == 1
    assert (public.connections, internal.connections) == (1, 0)
    assert proxy.refusals == [Refusal("127.0.0.1", internal.port, "127.0.0.1", "loopback")]


class RebindingResolver:
    """A DNS that answers the allowed address first and an internal one afterwards."""

    def __init__(self, *answers: Sequence[IPAddress]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


async def test_dns_rebinding_cannot_move_a_checked_connection() -> None:
    public_ip, internal_ip = IPv4Address("127.0.0.2"), IPv4Address("127.0.0.1")
    resolver = RebindingResolver([public_ip], [internal_ip])
    async with listening("127.0.0.2") as public, listening("127.0.0.1", public.port) as internal:
        policy = EgressPolicy((ip_network("127.0.0.2/32"),), frozenset({public.port}))
        async with _proxy(policy, resolver=resolver) as proxy, _client(proxy) as client:
            first = await client.get(f"http://rebind.test:{public.port}/")
            second = await client.get(f"http://rebind.test:{public.port}/")
    assert (first.status_code, second.status_code) == (200, 403)
    assert resolver.calls == 2
    assert (public.connections, internal.connections) == (1, 0)


async def test_a_name_with_any_internal_answer_is_refused_whole() -> None:
    resolver = RebindingResolver([IPv4Address("127.0.0.2"), IPv4Address("127.0.0.1")])
    async with listening("127.0.0.2") as public, listening("127.0.0.1", public.port) as internal:
        policy = EgressPolicy((ip_network("127.0.0.2/32"),), frozenset({public.port}))
        async with _proxy(policy, resolver=resolver) as proxy, _client(proxy) as client:
            response = await client.get(f"http://mixed.test:{public.port}/")
    assert response.status_code == 403
    assert public.connections + internal.connections == 0


async def test_a_port_outside_the_allowed_ones_is_refused_before_any_lookup() -> None:
    resolver = RebindingResolver([IPv4Address("127.0.0.1")])
    async with listening("127.0.0.1") as server:
        async with _proxy(EgressPolicy(LOOPBACK), resolver=resolver) as proxy:
            ssh = await ask_proxy(proxy.url, b"GET http://ssh.test:22/ HTTP/1.1\r\n\r\n")
            other = await ask_proxy(
                proxy.url, f"GET http://127.0.0.1:{server.port}/ HTTP/1.1\r\n\r\n".encode()
            )
    assert (ssh.status, other.status) == (403, 403)
    assert ssh.seconds < QUICK
    assert (resolver.calls, server.connections) == (0, 0)
    assert proxy.refusals[0] == Refusal("ssh.test", 22, None, "port 22 not allowed")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /relative HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"GET https://example.com/ HTTP/1.1\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\n\r\n",
        b"CONNECT example.com:99999 HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
        b"GET http://exa mple.com/ HTTP/1.1\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nBroken header\r\n\r\n",
        "GET http://ex\u00e4mple.com/ HTTP/1.1\r\n\r\n".encode(),
    ],
)
async def test_requests_it_does_not_proxy_are_bad_requests(request_bytes: bytes) -> None:
    async with _proxy(EgressPolicy()) as proxy:
        answer = await ask_proxy(proxy.url, request_bytes)
    assert answer.status == 400


async def test_a_head_too_large_or_too_slow_is_answered_and_closed() -> None:
    async with _proxy(EgressPolicy(), idle_timeout=0.2, max_header_bytes=1024) as proxy:
        large = await ask_proxy(
            proxy.url, b"GET http://a.test/ HTTP/1.1\r\nX: " + b"a" * 4096 + b"\r\n\r\n"
        )
        slow = await ask_proxy(proxy.url, b"GET http://a.test/ HTTP/1.1\r\n")
    assert large.status == 431
    assert slow.status == 400 and slow.seconds < 5


async def test_an_unresolvable_or_silent_name_is_a_bad_gateway() -> None:
    async def no_answer(host: str, port: int) -> Sequence[IPAddress]:
        raise UnresolvableError("NXDOMAIN")

    async def silence(host: str, port: int) -> Sequence[IPAddress]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with _proxy(EgressPolicy(), resolver=no_answer) as proxy:
        missing = await ask_proxy(proxy.url, b"GET http://nowhere.test/ HTTP/1.1\r\n\r\n")
    async with _proxy(EgressPolicy(), resolver=silence, connect_timeout=0.2) as proxy:
        silent = await ask_proxy(proxy.url, b"GET http://slow.test/ HTTP/1.1\r\n\r\n")
    assert (missing.status, silent.status) == (502, 502)
    assert silent.seconds < 5


def _fill_accept_queue(port: int) -> list[socket.socket]:
    """Connect until the kernel drops SYNs to a listener that never accepts (at most 8)."""
    fillers: list[socket.socket] = []
    for _ in range(8):
        filler = socket.socket()
        filler.settimeout(0.2)
        fillers.append(filler)
        try:
            filler.connect(("127.0.0.1", port))
        except TimeoutError:
            return fillers
    raise AssertionError("the accept queue never filled")


async def test_an_upstream_that_does_not_accept_in_time_is_a_gateway_timeout() -> None:
    with socket.socket() as backlog_full:
        backlog_full.bind(("127.0.0.1", 0))
        backlog_full.listen(0)
        port = backlog_full.getsockname()[1]
        fillers = _fill_accept_queue(port)
        try:
            policy = EgressPolicy(LOOPBACK, frozenset({port}))
            async with _proxy(policy, connect_timeout=0.3) as proxy:
                answer = await ask_proxy(
                    proxy.url, f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\n\r\n".encode()
                )
        finally:
            for filler in fillers:
                filler.close()
    assert answer.status == 504
    assert answer.seconds < 5


async def test_a_silent_tunnel_is_closed_after_the_idle_timeout() -> None:
    async with listening("127.0.0.1", echo=True) as echo:
        policy = EgressPolicy(LOOPBACK, frozenset({echo.port}))
        async with _proxy(policy, idle_timeout=0.2) as proxy:
            status, reader, writer = await open_tunnel(proxy.url, f"127.0.0.1:{echo.port}")
            started = time.perf_counter()
            rest = await asyncio.wait_for(reader.read(), 5)
            writer.close()
    assert (status, rest) == (200, b"")
    assert 0.15 < time.perf_counter() - started < 5


async def test_connections_beyond_the_limit_are_turned_away() -> None:
    async with listening("127.0.0.1", echo=True) as echo:
        policy = EgressPolicy(LOOPBACK, frozenset({echo.port}))
        async with _proxy(policy, max_tunnels=1) as proxy:
            status, _, held = await open_tunnel(proxy.url, f"127.0.0.1:{echo.port}")
            second = await ask_proxy(
                proxy.url, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode()
            )
            held.close()
    assert (status, second.status, echo.connections) == (200, 503, 1)


async def test_a_refusal_is_logged_with_host_and_port_but_never_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.links.proxy"):
        async with _proxy(EgressPolicy()) as proxy:
            await ask_proxy(proxy.url, b"GET http://10.0.0.1/x?token=hunter2 HTTP/1.1\r\n\r\n")
    assert "10.0.0.1:80" in caplog.text and "private" in caplog.text
    assert "hunter2" not in caplog.text and "/x" not in caplog.text


def _keep_alive_response(_path: str) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain"


async def test_a_client_that_keeps_connections_alive_gets_each_answer() -> None:
    """The upstream may ignore ``Connection: close``; the proxy ends the connection with
    the answer, so a pooling client opens a new one rather than hang on a dead one."""
    async with listening("127.0.0.1", route=_keep_alive_response) as server:
        policy = EgressPolicy(LOOPBACK, frozenset({server.port}))
        async with _proxy(policy) as proxy, _client(proxy) as client:
            answers = [
                (await asyncio.wait_for(client.get(f"http://127.0.0.1:{server.port}/{n}"), 5)).text
                for n in range(3)
            ]
    assert answers == ["again"] * 3
    assert server.paths == ["/0", "/1", "/2"]


async def test_a_busy_tunnel_still_ends_at_its_lifetime() -> None:
    async with listening("127.0.0.1", echo=True) as echo:
        policy = EgressPolicy(LOOPBACK, frozenset({echo.port}))
        async with _proxy(policy, idle_timeout=5.0, max_lifetime=0.3) as proxy:
            _, reader, writer = await open_tunnel(proxy.url, f"127.0.0.1:{echo.port}")
            started = time.perf_counter()
            ended = False
            while not ended and time.perf_counter() - started < 5:
                try:
                    writer.write(b"x")
                    await writer.drain()
                    ended = not await asyncio.wait_for(reader.read(1), 5)
                except ConnectionError:
                    ended = True
            writer.close()
    assert ended
    assert 0.25 < time.perf_counter() - started < 3


async def test_https_through_a_tunnel_reaches_an_allowed_tls_server(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with listening_tls(cert, key) as server:
        policy = EgressPolicy(LOOPBACK, frozenset({server.port}))
        async with _proxy(policy) as proxy:
            async with httpx.AsyncClient(
                proxy=proxy.url, trust_env=False, verify=trusted
            ) as client:
                response = await client.get(f"https://127.0.0.1:{server.port}/track?id=3")
    assert (response.status_code, response.text) == (200, "secure")
    assert server.paths == ["/track?id=3"]
