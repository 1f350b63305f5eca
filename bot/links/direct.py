"""A direct link to a media file, downloaded with hard limits on bytes, time and hops.

A server answering a link is a stranger's server: it may advertise 10 GB, say 1 MB and
send 10 GB, send no length and never stop, trickle a byte a minute (slowloris), or
redirect forever or to another scheme. So:

* every hop goes through the egress proxy (``proxy_url``; ``trust_env=False`` so no
  environment variable sends it elsewhere), and redirects are followed here, one by one,
  each target checked as a link (:func:`bot.links.classify.parse_link`) and counted;
* an advertised length over the cap is refused before a byte of the body is read, and
  the bytes are counted while streaming, so a lying or absent length is cut at the cap;
* one wall-clock limit covers the whole download, whatever the server's pace;
* a content type that is clearly not media is refused (an HTML page is a page:
  :class:`PageInsteadOfMedia`, which the fetcher may hand to yt-dlp's generic extractor);
* the file is written under the caller's private folder with a fixed name, never a name
  taken from the URL or the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import aiofiles.os
import httpx

from bot.links.classify import parse_link
from bot.links.errors import LinkError

MEDIA_FILE_NAME = "direct-download"
"""The downloaded file's name inside ``dest`` (no extension: the decoder probes content)."""

_CHUNK_BYTES = 64 * 1024
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_NOT_MEDIA_PREFIXES = ("text/", "image/", "font/", "multipart/")
_NOT_MEDIA_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/pdf",
    "application/zip", "application/gzip", "application/x-tar",
    # Manifests name more URLs to fetch; a direct link must be the media itself.
    "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
    "audio/x-mpegurl", "application/dash+xml", "audio/x-scpls",
})  # fmt: skip
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Downloaded:
    """A direct link's media on disk."""

    path: Path
    final_url: str
    """The URL the media came from after redirects (a key of the cache by source)."""
    content_type: str
    size_bytes: int
    sha256: str
    """Of the bytes written, computed while streaming."""


class PageInsteadOfMedia(LinkError):
    """The link answered with a web page, not a media file."""

    def __init__(self, final_url: str, *, site: str) -> None:
        super().__init__("not_audio", site=site, detail="the link is a web page")
        self.final_url = final_url


async def download_direct(
    url: str,
    dest: Path,
    *,
    proxy_url: str | None,
    max_bytes: int,
    timeout_seconds: float,
    max_redirects: int,
) -> Downloaded:
    """Download the media file ``url`` names into the private folder ``dest``.

    ``proxy_url`` is the egress proxy every connection goes through (None only in tests
    that have none).

    Raises:
        PageInsteadOfMedia: the link is a web page.
        LinkError: ``too_big`` (advertised or counted), ``timeout`` (the whole download
            took longer than ``timeout_seconds``), ``not_audio`` (a content type that is
            not media), ``bad_link`` (too many redirects, or one to a refused link),
            ``unreachable`` (no connection, or an HTTP error status).
    """
    site = parse_link(url).host
    limits = httpx.Timeout(timeout_seconds)
    async with httpx.AsyncClient(
        proxy=proxy_url,
        trust_env=False,
        follow_redirects=False,
        timeout=limits,
        # The body as sent: no decompression, so the byte cap counts what is stored.
        headers={"Accept-Encoding": "identity"},
    ) as client:
        try:
            async with asyncio.timeout(timeout_seconds):
                return await _follow(client, url, dest, max_bytes, max_redirects)
        except TimeoutError:
            raise LinkError(
                "timeout", site=site, detail=f"no download within {timeout_seconds:.0f} s"
            ) from None
        except httpx.ProxyError as error:
            raise LinkError("refused_address", site=site, detail=str(error)[:200]) from None
        except httpx.HTTPError as error:
            detail = f"{type(error).__name__}: {str(error)[:200]}"
            raise LinkError("unreachable", site=site, detail=detail) from None


async def _follow(
    client: httpx.AsyncClient, url: str, dest: Path, max_bytes: int, max_redirects: int
) -> Downloaded:
    """Follow redirects one hop at a time, then stream the media."""
    for _ in range(max_redirects + 1):
        link = parse_link(url)
        async with client.stream("GET", link.url) as response:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                url = urllib.parse.urljoin(link.url, response.headers["location"])
                continue
            if response.status_code != 200:
                raise LinkError(
                    "unreachable", site=link.host, detail=f"HTTP {response.status_code}"
                )
            content_type = _media_type(response, link.url, link.host)
            _check_length(response, max_bytes, link.host)
            path = dest / MEDIA_FILE_NAME
            size, digest = await _stream_to(response, path, max_bytes, link.host)
            return Downloaded(path, link.url, content_type, size, digest)
    raise LinkError("bad_link", site=parse_link(url).host, detail=f"over {max_redirects} redirects")


def _media_type(response: httpx.Response, url: str, site: str) -> str:
    """The response's content type, refused when it is clearly not media."""
    content_type = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    if content_type in _PAGE_TYPES:
        raise PageInsteadOfMedia(url, site=site)
    if content_type in _NOT_MEDIA_TYPES or content_type.startswith(_NOT_MEDIA_PREFIXES):
        raise LinkError("not_audio", site=site, detail=f"content type {content_type[:60]}")
    return content_type


def _check_length(response: httpx.Response, max_bytes: int, site: str) -> None:
    """Refuse an advertised length over the cap before reading the body."""
    advertised = response.headers.get("content-length", "")
    if advertised.isdigit() and int(advertised) > max_bytes:
        raise LinkError("too_big", site=site, detail=f"advertised {advertised} bytes")


async def _stream_to(
    response: httpx.Response, path: Path, max_bytes: int, site: str
) -> tuple[int, str]:
    """Write the body to ``path``, counting; cut (and delete the file) past the cap."""
    digest = hashlib.sha256()
    size = 0
    try:
        async with aiofiles.open(path, "wb") as file:
            async for chunk in response.aiter_raw(_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise LinkError("too_big", site=site, detail=f"over {max_bytes} bytes sent")
                digest.update(chunk)
                await file.write(chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(path)
        raise
    return size, digest.hexdigest()
