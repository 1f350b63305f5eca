"""Local servers for the egress guard's tests: listeners that count who connects, and a
tiny HTTP server that answers, redirects or streams a body of a given size.

A refused target is proved by its listener seeing zero connections, not by the proxy's
own word; these servers record every accepted connection for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

Route = Callable[[str], bytes]
"""Request path to the whole response (head and body)."""


@dataclass
class Listener:
    """A TCP server on one address that records each connection and answers by route."""

    host: str
    port: int
    connections: int = 0
    paths: list[str] = field(default_factory=list)


def ok_response(body: bytes = b"ok") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def redirect_response(location: str) -> bytes:
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()


@contextlib.asynccontextmanager
async def listening(
    host: str, port: int = 0, route: Route | None = None, *, echo: bool = False
) -> AsyncIterator[Listener]:
    """Serve on ``host``/``port`` (0: a free one) while the block runs.

    With ``echo`` the server sends back whatever it receives (a CONNECT tunnel's far
    end); otherwise it reads one request head and answers ``route(path)``.
    """
    answer = route or (lambda _path: ok_response())
    listener = Listener(host, port)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        try:
            if echo:
                while chunk := await reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
                return
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            listener.paths.append(path)
            writer.write(answer(path))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host=host, port=port)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()


async def serve_bytes(
    size: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer one request with ``size`` bytes of zeros, streamed in 1 MiB chunks."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        )
        chunk = bytes(1 << 20)
        left = size
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@dataclass(frozen=True)
class ProxyAnswer:
    """What the proxy said to one raw request: its status, body, and seconds taken."""

    status: int
    body: bytes
    seconds: float


async def ask_proxy(proxy_url: str, request: bytes, *, wait: float = 10.0) -> ProxyAnswer:
    """Send ``request`` to the proxy byte for byte (spellings and shapes that httpx will
    not send, like ``0177.0.0.1`` or an origin-form request) and read its whole answer."""
    host, port = proxy_url.removeprefix("http://").split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return ProxyAnswer(status, answer.partition(b"\r\n\r\n")[2], time.perf_counter() - started)


async def open_tunnel(
    proxy_url: str, target: str
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """``CONNECT target`` through the proxy; the status and the open connection."""
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return int(head.split(b" ", 2)[1]), reader, writer


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (openssl), so a tunnel can carry real TLS."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextlib.asynccontextmanager
async def listening_tls(cert: Path, key: Path) -> AsyncIterator[Listener]:
    """An HTTPS server on 127.0.0.1 answering ``ok`` to each request."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = Listener("127.0.0.1", 0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            listener.paths.append(head.split(b" ", 2)[1].decode())
            writer.write(ok_response(b"secure"))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host="127.0.0.1", port=0, ssl=context)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()
