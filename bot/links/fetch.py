"""One link → one media file in the caller's private folder: a direct file or a site's item.

The fetcher chooses the way (``bot.links.direct`` for a path that ends like a media file,
``bot.links.sites`` and yt-dlp otherwise, or for a "file" link that turns out to be a
web page when the operator allows the generic extractor) and names the source for the
cache by source (:func:`source_key`). Every connection goes through ``proxy_url``, the
egress proxy (``bot.links.proxy``). What was fetched is then an upload like any other:
the caller probes and decodes it with the same hardened path.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.links.classify import parse_link
from bot.links.direct import PageInsteadOfMedia, download_direct
from bot.links.errors import LinkError
from bot.links.sites import SiteRequest, download_item, read_item
from bot.settings.links import LinksSettings


@dataclass(frozen=True)
class FetchedLink:
    """A link's media on disk, and where it came from."""

    path: Path | None
    """None when the caller already has this source's song (``already_have``)."""
    site: str
    """The link's host: what a message names."""
    source_key: str
    """The cache-by-source key (:func:`source_key`)."""
    title: str | None = None
    artist: str | None = None
    duration: float | None = None
    """By the site's metadata (a direct file's is known once decoded)."""
    sha256: str | None = None
    """A direct file's content hash (yt-dlp's downloads are hashed by the upload path)."""


SourceCheck = Callable[[str], Awaitable[bool]]
"""Asked with a source key before a site's media is downloaded: True when the caller
already has that song (the cache by source), so nothing is downloaded."""


def source_key(*, extractor: str | None = None, item_id: str | None = None,
               final_url: str | None = None) -> str:  # fmt: skip
    """The identity of a link's song: ``site:<extractor>:<item id>`` for a site's item
    (whatever URL spelling named it), else ``url:<final URL>`` for a direct file."""
    if extractor and item_id:
        return f"site:{extractor.lower()}:{item_id}"
    if final_url:
        return f"url:{final_url}"
    raise ValueError("a source is an extractor and an item id, or a final URL")


class LinkFetcher:
    """Fetches links under the operator's ``[links]`` settings, through one proxy."""

    def __init__(
        self, settings: LinksSettings, proxy_url: str | None, *, python: str = sys.executable
    ) -> None:
        self._settings = settings
        self._proxy_url = proxy_url
        self._python = python

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        max_duration_seconds: float,
        already_have: SourceCheck | None = None,
    ) -> FetchedLink:
        """Fetch ``url`` into the private folder ``dest``.

        ``max_duration_seconds`` is the caller's limit (the per-song limit, or the user's
        minutes left): a site's item longer than that by its metadata is refused before
        any media is downloaded. ``already_have`` is asked with a site item's key once
        its metadata is read; when it answers True nothing is downloaded and the result's
        ``path`` is None. (A direct file is known by its final URL and content hash, so
        it is downloaded; the content hash then finds it like any upload.)

        Raises:
            LinkError: the refusal, by kind (``bot.links.errors``).
        """
        link = parse_link(url)
        if not self._settings.enabled:
            raise LinkError("unsupported_site", site=link.host, detail="links are turned off")
        if not link.direct:
            return await self._site(link.url, link.host, dest, max_duration_seconds, already_have)
        try:
            downloaded = await download_direct(
                link.url,
                dest,
                proxy_url=self._proxy_url,
                max_bytes=self._settings.max_bytes,
                timeout_seconds=self._settings.download_timeout_seconds,
                max_redirects=self._settings.max_redirects,
            )
        except PageInsteadOfMedia as page:
            if not self._settings.generic_extractor:
                raise
            return await self._site(
                page.final_url, link.host, dest, max_duration_seconds, already_have
            )
        return FetchedLink(
            path=downloaded.path,
            site=link.host,
            source_key=source_key(final_url=downloaded.final_url),
            sha256=downloaded.sha256,
        )

    async def _site(
        self,
        url: str,
        site: str,
        dest: Path,
        max_duration_seconds: float,
        already_have: SourceCheck | None,
    ) -> FetchedLink:
        settings = self._settings
        request = SiteRequest(
            url=url,
            site=site,
            dest=dest,
            proxy_url=self._proxy_url,
            extractors=settings.extractors(),
            max_bytes=settings.max_bytes,
            max_duration_seconds=max_duration_seconds,
            metadata_timeout_seconds=settings.metadata_timeout_seconds,
            download_timeout_seconds=settings.download_timeout_seconds,
        )
        item = await read_item(request, python=self._python)
        key = source_key(extractor=item.extractor, item_id=item.item_id)
        path = None
        if already_have is None or not await already_have(key):
            path = (await download_item(request, item, python=self._python)).path
        return FetchedLink(
            path=path,
            site=site,
            source_key=key,
            title=item.title,
            artist=item.artist,
            duration=item.duration,
        )
