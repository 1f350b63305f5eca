"""Where a link's bytes come from: the link service, read back as an upload's stream.

A link is a song like an upload (``bot.chat.conversation.receiving``): the same refusals
before anything is fetched, the same byte cap, hash, header check, reservation and
charge on the decoded length. The only difference is where the bytes come from, and
that is this module: :func:`link_chunks` has the process's
:class:`bot.links.service.LinkService` fetch the link into a private folder of its own
under the uploads folder (the fetcher writes its own file names; the store names the
upload), then yields that file as the chunks the store saves and hashes, and removes
the folder. A crash in between leaves only the folder, which the store's cleanup
removes like any leftover upload.

The length a link may have is the smaller of the per-song limit and what the user has
left (:func:`link_max_seconds`): a site's item longer than that by its metadata is
refused before any media is fetched.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import uuid4

import aiofiles

from bot.chat.conversation.types import LyricsUpload, SongUpload
from bot.links.classify import Link
from bot.links.fetch import FetchedLink
from bot.links.service import LinkService
from storage.files import CHUNK_BYTES, make_private_dirs
from storage.quotas import MIN_SONG_SECONDS
from storage.records import QuotaStatus

LINK_REF_PREFIX = "link:"
"""An accepted song's ``file_ref`` that is a link, not a platform's file: after a restart
it is fetched again from the link (``bot.chat.conversation.intake``)."""


def link_ref(url: str) -> str:
    """The ``SongUpload.file_ref`` of a song sent as the link ``url``."""
    return f"{LINK_REF_PREFIX}{url}"


def link_of_ref(file_ref: str | None) -> str | None:
    """The link an accepted song's ``file_ref`` names, or None for a platform's file."""
    if file_ref is None or not file_ref.startswith(LINK_REF_PREFIX):
        return None
    return file_ref[len(LINK_REF_PREFIX) :]


def no_platform_stream() -> AsyncIterator[bytes]:
    """The ``SongUpload.stream`` of a link: never opened (its bytes come from
    :func:`link_chunks`)."""
    raise RuntimeError("a link's bytes come from the link service")


def link_upload(link: Link, lyrics: LyricsUpload | None = None) -> SongUpload:
    """A song sent as ``link`` (``bot.links.classify.link_in`` found it), as the flow's
    ``accept_song`` takes it: named by its site until its title is known."""
    return SongUpload(
        stream=no_platform_stream,
        fallback_title=link.host,
        file_ref=link_ref(link.url),
        link=link.url,
        lyrics=lyrics,
    )


def link_max_seconds(per_song_seconds: float, status: QuotaStatus) -> float:
    """The longest song the user may send now: the per-song limit (the server's and the
    user's own), and no more than their audio minutes left."""
    limits = [per_song_seconds]
    if status.limits.max_song_minutes is not None:
        limits.append(status.limits.max_song_minutes * 60)
    if status.audio_minutes_left is not None:
        limits.append(max(status.audio_minutes_left * 60, MIN_SONG_SECONDS))
    return min(limits)


async def link_chunks(
    service: LinkService,
    url: str,
    uploads_dir: Path,
    *,
    max_duration_seconds: float,
    on_fetched: Callable[[FetchedLink], None],
) -> AsyncIterator[bytes]:
    """The media of ``url``, fetched into a private folder and read back in chunks.

    ``on_fetched`` is told what was fetched (the site's title and artist for the song's
    credits) before the first chunk.

    Raises:
        LinkError: the link was refused or could not be fetched (nothing is yielded).
    """
    folder = uploads_dir / f"link-{uuid4().hex}"
    await asyncio.to_thread(make_private_dirs, folder)
    try:
        fetched = await service.fetch(url, folder, max_duration_seconds=max_duration_seconds)
        if fetched.path is None:  # asked for no cache by source: always a file
            raise RuntimeError("the link service fetched no file")
        on_fetched(fetched)
        async with aiofiles.open(fetched.path, "rb") as media:
            while chunk := await media.read(CHUNK_BYTES):
                yield chunk
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
