"""A local web server (aiohttp, 127.0.0.1) that plays every kind of site a link can name.

Honest ones: media files (``/media/NAME``) and HTML pages (``/page/NAME``, for yt-dlp's
generic extractor). Hostile ones: a length that lies (``/lying.mp3``), a huge advertised
length (``/huge.mp3``), no length and no end (``/endless.mp3``, and a page that never
ends: ``/endless.html``), a byte at a time (``/slow.mp3``), redirect chains
(``/hop/N.mp3``), a redirect to any URL a test names (``/redirect/NAME.mp3``), and a
live HLS playlist without ``#EXT-X-ENDLIST`` (``/live.m3u8``). It listens on 127.0.0.1
unless a test names another loopback address (so that address alone can be allowed while
127.0.0.1 stays internal).

Every request is counted by path and every body byte sent is counted, so a test asserts
what was fetched ("no media request at all") rather than how long something took. The
endless answers stop by themselves after a bound, so a broken client cannot hang a test.

Usage::

    async with running_link_server() as server:
        server.add_media("song.mp3", song_bytes)
        url = server.url("/media/song.mp3")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

CHUNK = b"\0" * 65536
ENDLESS_CHUNKS = 20_000
"""1.3 GB at most from an endless answer: far past any cap a test sets."""
SLOW_BYTES = 6000
SLOW_INTERVAL_SECONDS = 0.05


@dataclass
class LinkServer:
    """The server's content and what it was asked."""

    port: int = 0
    host: str = "127.0.0.1"
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    bytes_sent: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add_media(self, name: str, content: bytes, content_type: str = "audio/mpeg") -> str:
        """Serve ``content`` at ``/media/NAME``; its URL."""
        self.media[name] = (content, content_type)
        return self.url(f"/media/{name}")

    def add_page(self, name: str, html: str) -> str:
        """Serve ``html`` at ``/page/NAME``; its URL."""
        self.pages[name] = html
        return self.url(f"/page/{name}")

    def add_redirect(self, name: str, target: str) -> str:
        """Answer ``/redirect/NAME.mp3`` with a 302 to ``target``; its URL."""
        self.redirects[name] = target
        return self.url(f"/redirect/{name}.mp3")

    def media_requests(self) -> int:
        """Requests for any media (files, hostile media, HLS segments)."""
        return sum(count for path, count in self.requests.items() if not path.startswith("/page"))

    async def _write(self, response: web.StreamResponse, path: str, data: bytes) -> None:
        await response.write(data)
        self.bytes_sent[path] += len(data)


def page_with_audio(*sources: str, title: str = "A song") -> str:
    """An HTML page embedding each of ``sources`` in an ``<audio>`` element."""
    tags = "".join(f'<audio controls src="{source}"></audio>' for source in sources)
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{tags}</body></html>"


def page_with_video_object(content_url: str, *, duration: str, name: str = "Long") -> str:
    """An HTML page describing one video by schema.org JSON-LD (its length included)."""
    data = {
        "@context": "https://schema.org", "@type": "VideoObject", "name": name,
        "description": name, "contentUrl": content_url, "encodingFormat": "audio/mpeg",
        "duration": duration,
        "uploadDate": "2026-01-01", "thumbnailUrl": content_url + ".jpg",
    }  # fmt: skip
    script = f'<script type="application/ld+json">{json.dumps(data)}</script>'
    return f"<!DOCTYPE html><html><head><title>{name}</title>{script}</head><body></body></html>"


def _app(server: LinkServer) -> web.Application:
    @web.middleware
    async def count(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        server.requests[request.path] += 1
        return await handler(request)

    async def media(request: web.Request) -> web.StreamResponse:
        found = server.media.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        content, content_type = found
        server.bytes_sent[request.path] += len(content)
        return web.Response(body=content, content_type=content_type)

    async def page(request: web.Request) -> web.StreamResponse:
        html = server.pages.get(request.match_info["name"])
        if html is None:
            raise web.HTTPNotFound()
        server.bytes_sent[request.path] += len(html.encode())
        return web.Response(text=html, content_type="text/html")

    async def hop(request: web.Request) -> web.StreamResponse:
        left = int(request.match_info["left"])
        target = f"/hop/{left - 1}.mp3" if left > 0 else "/media/song.mp3"
        raise web.HTTPFound(target)

    async def redirect(request: web.Request) -> web.StreamResponse:
        target = server.redirects.get(request.match_info["name"])
        if target is None:
            raise web.HTTPNotFound()
        raise web.HTTPFound(target)

    async def streamed(request: web.Request) -> web.StreamResponse:
        return await _hostile(server, request)

    async def live(request: web.Request) -> web.StreamResponse:
        playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:7\n"
        playlist += "#EXTINF:5.0,\n/media/segment-7.ts\n"  # no #EXT-X-ENDLIST: live
        return web.Response(text=playlist, content_type="application/vnd.apple.mpegurl")

    app = web.Application(middlewares=[count])
    app.router.add_get("/media/{name}", media)
    app.router.add_get("/page/{name}", page)
    app.router.add_get("/hop/{left:\\d+}.mp3", hop)
    app.router.add_get("/redirect/{name}.mp3", redirect)
    app.router.add_get("/live.m3u8", live)
    for path in ("/lying.mp3", "/huge.mp3", "/endless.mp3", "/slow.mp3", "/endless.html"):
        app.router.add_get(path, streamed)
    return app


async def _hostile(server: LinkServer, request: web.Request) -> web.StreamResponse:
    """The misbehaving answers, each bounded so a test can never hang on them."""
    path = request.path
    headers = {"Content-Type": "text/html" if path.endswith(".html") else "audio/mpeg"}
    if path == "/lying.mp3":
        headers["Content-Length"] = "1000"
    elif path == "/huge.mp3":
        headers["Content-Length"] = str(10 * 10**9)
    response = web.StreamResponse(headers=headers)
    if path in ("/endless.mp3", "/endless.html"):
        response.enable_chunked_encoding()
    await response.prepare(request)
    data, pause, count = (b"\0", SLOW_INTERVAL_SECONDS, SLOW_BYTES)
    if path != "/slow.mp3":
        data, pause, count = (CHUNK, 0.0, ENDLESS_CHUNKS)
    if path.endswith(".html"):
        await server._write(response, path, b"<!DOCTYPE html><html><body>")
        data = b"<p>la</p>" * (len(CHUNK) // 9)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        for _ in range(count):
            if request.transport is None or request.transport.is_closing():
                break  # the client hung up: what was sent is what it read, give or take
            await server._write(response, path, data)
            await asyncio.sleep(pause)
    return response


@contextlib.asynccontextmanager
async def running_link_server(host: str = "127.0.0.1") -> AsyncIterator[LinkServer]:
    """A started :class:`LinkServer` on ``host`` (a free port), stopped on exit."""
    server = LinkServer(host=host)
    runner = web.AppRunner(_app(server), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()
