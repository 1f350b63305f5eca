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

The cache by source: once saved, a link's upload is kept under its source's key and the
link's own (``FileStore.keep_source``, hard links that retention removes like any
upload, an hour on). The same link again, or another link to the same site item, is
read from there: a direct file's link is found before anything is fetched, a site's
item once its page told its id and title, before its media. The copy then goes down the
same path again (hash, header check, reservation), and its content hash finds the
separated song in the result cache.

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
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader

from bot.chat.conversation.types import LyricsUpload, SongUpload
from bot.links.classify import Link
from bot.links.fetch import FetchedLink, source_key
from bot.links.service import LinkService
from storage.files import CHUNK_BYTES, FileStore, make_private_dirs
from storage.quotas import MIN_SONG_SECONDS
from storage.records import QuotaStatus

LINK_REF_PREFIX = "link:"
"""An accepted song's ``file_ref`` that is a link, not a platform's file: after a restart
it is fetched again from the link (``bot.chat.conversation.intake``)."""


MAX_FILE_REF_CHARS = 2048
"""The longest ``file_ref`` an accepted song's record holds (``storage``'s column)."""


def link_ref(url: str) -> str | None:
    """The ``SongUpload.file_ref`` of a song sent as the link ``url``; None for a link
    too long to keep on record (the song goes on without a record, as any such song)."""
    ref = f"{LINK_REF_PREFIX}{url}"
    return ref if len(ref) <= MAX_FILE_REF_CHARS else None


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


def source_keys(url: str, fetched: FetchedLink) -> set[str]:
    """The keys a fetched link's upload is kept under (``FileStore.keep_source``): its
    source's (a site's item, or a file's final URL), and the link's own, which finds it
    again before anything is fetched, when the site gave no title or artist (a direct
    file): otherwise its page is read again for them, since they name the results (and
    so take part in the result cache's key)."""
    keys = {fetched.source_key}
    if fetched.title is None and fetched.artist is None:
        keys.add(source_key(final_url=url))
    return keys


async def link_chunks(
    service: LinkService,
    url: str,
    files: FileStore,
    *,
    max_duration_seconds: float,
    on_fetched: Callable[[FetchedLink], None],
) -> AsyncIterator[bytes]:
    """The media of ``url``: its source's kept upload when there is one (the cache by
    source: nothing is fetched, or only a site's page to learn its item), else fetched
    into a private folder and read back, in chunks.

    ``on_fetched`` is told what was fetched (the site's title and artist, the source's
    key) before the first chunk; it is not called when the link's own key was kept.

    Raises:
        LinkError: the link was refused or could not be fetched (nothing is yielded).
    """
    media = await _open(files.source_copy(source_key(final_url=url)))
    if media is None:
        media = await _fetch(service, url, files, max_duration_seconds, on_fetched)
    try:
        while chunk := await media.read(CHUNK_BYTES):
            yield chunk
    finally:
        await media.close()


async def _fetch(
    service: LinkService,
    url: str,
    files: FileStore,
    max_duration_seconds: float,
    on_fetched: Callable[[FetchedLink], None],
) -> AsyncBufferedReader:
    """Fetch ``url`` into a private folder and open what came (the folder is gone on
    return; the open file reads on)."""

    async def already_have(key: str) -> bool:
        return await aiofiles.os.path.isfile(files.source_copy(key))

    folder = files.uploads_dir / f"link-{uuid4().hex}"
    await asyncio.to_thread(make_private_dirs, folder)
    try:
        fetched = await service.fetch(
            url, folder, max_duration_seconds=max_duration_seconds, already_have=already_have
        )
        media = await _open(fetched.path or files.source_copy(fetched.source_key))
        if media is None:  # the kept copy went (retention) since it was asked for
            fetched = await service.fetch(url, folder, max_duration_seconds=max_duration_seconds)
            media = await _open(fetched.path or folder)
        if media is None:
            raise RuntimeError("the link service fetched no file")
        on_fetched(fetched)
        return media
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def _open(path: Path) -> AsyncBufferedReader | None:
    try:
        return await aiofiles.open(path, "rb")
    except (FileNotFoundError, IsADirectoryError):
        return None
