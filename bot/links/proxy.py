"""The egress guard: one in-process forward proxy that every link connection goes through.

yt-dlp and the direct downloader are both pointed at :attr:`EgressProxy.url`, so the
page, every redirect and every media, manifest and fragment URL is checked in one place
rather than at each call site (issue 25). For each request the proxy reads the target,
checks the port, resolves the host once, checks every address
(:mod:`bot.links.resolve`) and connects to the checked address itself, so the
connection cannot be rebound to another one. Refusals answer ``403`` with no
connection attempted; bad requests ``400``; unresolvable hosts ``502``; an upstream that
does not accept in time ``504``; too many tunnels at once ``503``.

It listens on 127.0.0.1 only, on a free port, for as long as the ``async with`` lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from bot.links.egress import EgressPolicy, IPAddress
from bot.links.proxy_head import BadProxyRequestError, ProxyRequest, parse_request_head
from bot.links.relay import relay
from bot.links.resolve import (
    CheckedTarget,
    RefusedTargetError,
    Resolver,
    UnresolvableError,
    check_target,
    system_resolver,
)

logger = logging.getLogger(__name__)

_UPSTREAM_BUFFER = 1 << 20
"""Bytes buffered from upstream before reading pauses: large enough for fast downloads."""

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Refusal:
    """One refused connection, for logs and tests: never the URL's path or query."""

    host: str
    port: int
    address: str | None
    reason: str


class _Answered(Exception):
    """The client was answered with an error status; the connection ends here."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class EgressProxy:
    """An HTTP forward proxy on 127.0.0.1 that lets links reach public addresses only.

    Args:
        policy: which addresses and ports may be reached.
        connect_timeout: seconds to resolve a name, and again to connect upstream.
        idle_timeout: seconds a request head may take, and a tunnel may go without a
            byte either way.
        max_header_bytes: the longest request head accepted (``431`` beyond).
        max_tunnels: connections served at once; more are answered ``503``.
        max_lifetime: seconds one connection may last in all, or ``None``.
        resolver: host and port to addresses (the system's by default).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        connect_timeout: float,
        idle_timeout: float,
        max_header_bytes: int = 16 * 1024,
        max_tunnels: int = 32,
        max_lifetime: float | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._policy = policy
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._max_header_bytes = max_header_bytes
        self._max_tunnels = max_tunnels
        self._max_lifetime = max_lifetime
        self._resolver = resolver
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._refusals: list[Refusal] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``proxy=`` in httpx and yt-dlp."""
        if self._server is None:
            raise RuntimeError("the egress proxy is not running")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def refusals(self) -> list[Refusal]:
        """Every refusal so far, oldest first (a copy)."""
        return list(self._refusals)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._accept, host="127.0.0.1", port=0, limit=self._max_header_bytes
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        full = len(self._handlers) >= self._max_tunnels
        self._handlers.add(task)
        try:
            if full:
                # The head is read first: closing on unread bytes would reset the
                # connection before the client could read the answer.
                await self._read_request(reader)
                raise _Answered(503, "too many connections")
            async with asyncio.timeout(self._max_lifetime):
                await self._serve(reader, writer)
        except TimeoutError:
            logger.info("egress connection ended: lifetime of %g s reached", self._max_lifetime)
        except _Answered as answered:
            await _answer(writer, answered.status, answered.reason)
            if answered.status == 431:
                await _discard_rest(reader, self._max_header_bytes * 4)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only the proxy's own exit cancels a handler; Python 3.11's stream server
            # would log a cancelled handler as an error, so it ends quietly here.
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await self._read_request(reader)
        target = await self._check(request)
        upstream = await self._connect(request, target)
        try:
            if request.upstream_head is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream[1].write(request.upstream_head)
            counts = await relay((reader, writer), upstream, idle_timeout=self._idle_timeout)
            logger.debug(
                "egress %s done: %d bytes up, %d down",
                request.log_target,
                counts.upstream_bytes,
                counts.downstream_bytes,
            )
        finally:
            upstream[1].close()

    async def _read_request(self, reader: asyncio.StreamReader) -> ProxyRequest:
        try:
            async with asyncio.timeout(self._idle_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as error:
            raise _Answered(431, "request head too large") from error
        except TimeoutError as error:
            raise _Answered(400, "request head too slow") from error
        try:
            return parse_request_head(head)
        except BadProxyRequestError as error:
            raise _Answered(400, str(error)) from error

    async def _check(self, request: ProxyRequest) -> CheckedTarget:
        try:
            return await check_target(
                self._policy,
                request.host,
                request.port,
                resolver=self._resolver,
                resolve_seconds=self._connect_timeout,
            )
        except RefusedTargetError as refused:
            self._refuse(request, refused.address, refused.reason)
            raise _Answered(403, refused.reason) from refused
        except UnresolvableError as error:
            logger.info("egress %s: host not resolved (%s)", request.log_target, error)
            raise _Answered(502, "host not resolved") from error

    def _refuse(self, request: ProxyRequest, address: IPAddress | None, reason: str) -> None:
        refusal = Refusal(
            request.host, request.port, None if address is None else str(address), reason
        )
        self._refusals.append(refusal)
        logger.warning(
            "egress refused %s (address %s): %s", request.log_target, refusal.address, reason
        )

    async def _connect(
        self, request: ProxyRequest, target: CheckedTarget
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the first checked address that accepts, within one deadline.

        The address goes to ``open_connection`` as a numeric string, which asyncio uses
        as is: no second lookup, so the connection is pinned to what was checked.
        """
        deadline = time.monotonic() + self._connect_timeout
        for address in target.addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    return await asyncio.open_connection(
                        str(address), request.port, limit=_UPSTREAM_BUFFER
                    )
            except TimeoutError:
                break
            except OSError as error:
                logger.info("egress %s via %s: %s", request.log_target, address, error)
        if time.monotonic() >= deadline:
            raise _Answered(504, "upstream did not accept in time")
        raise _Answered(502, "upstream refused the connection")


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    """A short error answer; ``reason`` is the proxy's own words, never the client's URL."""
    body = f"{reason}\n".encode("ascii", "replace")
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        writer.write(head.encode("ascii") + body)
        await writer.drain()


async def _discard_rest(reader: asyncio.StreamReader, most: int) -> None:
    """Read what the client is still sending (bounded, briefly) before closing, so the
    kernel does not reset the connection while the answer is unread."""
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(0.5):
            while most > 0 and (chunk := await reader.read(min(most, 65536))):
                most -= len(chunk)
