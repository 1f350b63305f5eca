"""``karaoke-bot separate URL``: a link is fetched, then separated like a file.

Every link of the run is fetched by one :class:`bot.links.service.LinkService` (so every
connection goes through its egress guard, as in the bot) into a private folder that lives
as long as the run, before the model loads: a refused link costs seconds, not a model,
and the other inputs still run. A site's item longer than the per-song limit
(``audio.max_duration_seconds``) by its metadata is refused before any media is fetched.

A fetched link is then an input like a file, named after the site's title when the site
has one, else after the link's last path segment, made safe for a file name as a chat
song's title is (``bot.chat.conversation.credits.display_title``); the link's raw text
names nothing, neither a file nor a message (messages name the site).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from bot.cli import messages
from bot.cli.separate_prep import FetchedInput
from bot.links.classify import Link, parse_link
from bot.links.errors import LinkError

if TYPE_CHECKING:
    from bot.links.fetch import FetchedLink
    from bot.links.service import LinkService
    from bot.settings import Settings

logger = logging.getLogger(__name__)

LINKS_AT_ONCE = 4
"""Links fetched at the same time by one command (each site link runs a yt-dlp child)."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A run's inputs once its links are fetched."""

    inputs: list[Path | FetchedInput]
    """Files as given and fetched links, in the order typed; refused links left out."""
    refused: int
    """Links not fetched, each already said in one line on stderr."""


@contextlib.contextmanager
def fetched_links(
    inputs: list[Path | str], settings: Settings, *, verbose: bool
) -> Iterator[Fetched]:
    """``inputs`` with every link (``str``) fetched; the files stay until the block ends.

    With ``links.enabled`` off, nothing is fetched and no proxy starts: each link is one
    line. The same link given twice is fetched once.
    """
    links = list(dict.fromkeys(item for item in inputs if isinstance(item, str)))
    if not links:
        yield Fetched([item for item in inputs if isinstance(item, Path)], 0)
        return
    with tempfile.TemporaryDirectory(prefix="karaoke-links-") as folder:  # mode 0700
        got: dict[str, FetchedInput | None] = dict.fromkeys(links)
        if settings.links.enabled:
            with _guard_logged(verbose):
                got = asyncio.run(_fetch_all(links, settings, Path(folder)))
        else:
            for text in links:
                messages.error(messages.link_refused(_site(text), messages.LINKS_OFF))
        found = [item if isinstance(item, Path) else got[item] for item in inputs]
        refused = sum(1 for item in got.values() if item is None)
        yield Fetched([item for item in found if item is not None], refused)


@contextlib.contextmanager
def _guard_logged(verbose: bool) -> Iterator[None]:
    """The links' warnings (the guard's refusals, with their addresses) only with ``-v``.

    In the bot they are the operator's log; here the operator reads the one line each
    refused link gets, and two log lines before it would say the same thing again.
    """
    links_logger = logging.getLogger("bot.links")
    level = links_logger.level
    if not verbose:
        links_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        links_logger.setLevel(level)


async def _fetch_all(
    links: list[str], settings: Settings, folder: Path
) -> dict[str, FetchedInput | None]:
    from bot.links.service import LinkService  # the proxy and httpx: only with a link

    at_once = asyncio.Semaphore(LINKS_AT_ONCE)
    async with LinkService(settings.links) as service:

        async def one(number: int, text: str) -> FetchedInput | None:
            async with at_once:
                return await _fetch_one(service, text, folder / str(number), settings)

        got = await asyncio.gather(*(one(number, text) for number, text in enumerate(links)))
    return dict(zip(links, got, strict=True))


async def _fetch_one(
    service: LinkService, text: str, dest: Path, settings: Settings
) -> FetchedInput | None:
    """The link's media in ``dest``, or None once its refusal is said."""
    try:
        link = parse_link(text)
        await asyncio.to_thread(dest.mkdir, mode=0o700)
        fetched = await service.fetch(
            link.url, dest, max_duration_seconds=settings.audio.max_duration_seconds
        )
    except LinkError as error:
        logger.info("link to %s refused: %s (%s)", error.site, error.kind, error.detail)
        messages.error(messages.link_refused(error.site or _site(text), error.kind))
        return None
    assert fetched.path is not None, "nothing was asked with already_have"
    return _named(link, fetched, fetched.path)


def _named(link: Link, fetched: FetchedLink, file: Path) -> FetchedInput:
    """The fetched file, named by the site's title, else the link's last path segment."""
    from bot.chat.conversation.credits import display_title  # the store: not for --help

    segment = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(link.url).path))
    stem = display_title(fetched.title, segment.stem, link.host)
    suffix = file.suffix or segment.suffix
    if not suffix.isascii() or not suffix[1:].isalnum():
        suffix = ""
    return FetchedInput(label=Path(fetched.site) / f"{stem}{suffix}", file=file, stem=stem)


def _site(text: str) -> str | None:
    """The host a link names, for its refusal, when it has one."""
    try:
        return parse_link(text).host
    except LinkError:
        return None
