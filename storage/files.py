"""Files on disk: saved uploads.

Layout below the data directory::

    uploads/<random>.upload            an upload, deleted when its job ends
    uploads/source-<hash>.upload       a link's upload kept for the cache by source

Every write is atomic: data goes to a hidden temporary name in the same folder, is
fsynced, then renamed into place, so a crash can leave hidden temporaries behind
(retention removes them) but never an upload that looks complete and is not.

Results are not kept here: they live in the separation result cache
(``separation.cache.results``), which bounds them by size and age.

Everything here is users' music on what may be a shared host, so every folder the store
creates is 0700 and every file 0600, whatever the process umask (see
:func:`make_private_dirs`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import aiofiles
import aiofiles.os

from storage.errors import DataDirError, UploadTooLargeError

CHUNK_BYTES = 1024 * 1024
TEMPORARY_SUFFIX = ".tmp"
UPLOAD_SUFFIX = ".upload"
"""Every upload's extension: one no demuxer claims, whatever the user named the file."""
PRIVATE_DIR_MODE = 0o700
SOURCE_PREFIX = "source-"
"""Kept uploads of links' sources (:meth:`FileStore.keep_source`)."""

logger = logging.getLogger(__name__)

ByteSource = bytes | AsyncIterable[bytes]
"""Upload data: all of it at once, or chunk by chunk as it arrives from the platform."""


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    size_bytes: int
    sha256: str


def is_temporary(name: str) -> bool:
    """Whether a directory entry is an unfinished write (hidden, ``.tmp`` suffix)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


class FileStore:
    """Uploads below one data directory."""

    def __init__(self, data_dir: Path) -> None:
        # Absolute, because upload paths are stored in jobs and must survive a restart
        # from another working directory.
        self.data_dir = Path(os.path.abspath(data_dir))
        self.uploads_dir = self.data_dir / "uploads"

    async def prepare(self) -> None:
        """Create the uploads folder and prove it is writable, so a read-only data
        directory is reported at start and not at the first upload.

        Raises:
            DataDirError: the folder cannot be created or written.
        """
        folder = self.uploads_dir
        probe = folder / _temporary_name("probe")
        try:
            await _prepare_own_folder(folder)
            async with aiofiles.open(probe, "wb"):
                pass
            await aiofiles.os.remove(probe)
        except OSError as exc:
            raise DataDirError(path=folder, reason=exc.strerror or str(exc)) from None

    async def save_upload(self, source: ByteSource, *, max_bytes: int) -> SavedUpload:
        """Write an upload under a fresh name, hashing it and enforcing ``max_bytes``.

        Nothing of the user's file name is kept, not even its extension: ffmpeg takes
        an extension as a hint for the demuxer, and ``song.m3u8`` made it open a
        playlist of the server's files. The content alone decides (``separation.audio.sandbox``).

        Raises:
            UploadTooLargeError: more than ``max_bytes`` arrived; nothing is kept.
        """
        path = self.uploads_dir / f"{uuid4().hex}{UPLOAD_SUFFIX}"
        size, digest = await _write_atomically(path, _chunks(source), max_bytes=max_bytes)
        return SavedUpload(path=path, size_bytes=size, sha256=digest)

    def source_copy(self, source_key: str) -> Path:
        """Where the upload of a link's source (``bot.links.fetch.source_key``) is kept
        by :meth:`keep_source`; named by the key's hash, never by anything of the URL."""
        digest = hashlib.sha256(source_key.encode()).hexdigest()
        return self.uploads_dir / f"{SOURCE_PREFIX}{digest}{UPLOAD_SUFFIX}"

    async def keep_source(self, upload: Path, source_keys: Iterable[str]) -> None:
        """Keep ``upload`` as the media of each of ``source_keys``: the cache by source
        of links, so the same link again is read from here instead of fetched again.

        Hard links, so no second copy is written. A kept copy is an upload no job refers
        to, so retention removes it like one (``storage.retention``: an hour after it
        was downloaded, and at the next start): the cache is bounded in time without a
        table or a sweep of its own. Best effort: a failure only costs a download.
        """
        for key in source_keys:
            target = self.source_copy(key)
            temporary = target.with_name(_temporary_name(target.name))
            try:
                await aiofiles.os.link(upload, temporary)
                await aiofiles.os.replace(temporary, target)
            except OSError as exc:
                logger.warning("could not keep a link's upload for its source: %s", exc)
                with suppress(OSError):
                    await aiofiles.os.remove(temporary)

    def is_upload(self, path: Path) -> bool:
        """Whether ``path`` is a file this store saved (and may therefore delete)."""
        return Path(os.path.abspath(path)).parent == self.uploads_dir

    async def delete_upload(self, path: Path) -> bool:
        """Delete a saved upload; False when it was already gone or is not ours.

        Paths outside the uploads folder are left alone: a job's input may be a file the
        store did not save (an operator's own), which must survive the job.
        """
        if not self.is_upload(path):
            return False
        try:
            await aiofiles.os.remove(path)
        except FileNotFoundError:
            return False
        return True


def make_private_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents as 0700 folders, whatever the umask.

    ``os.makedirs(path, mode=0o700)`` gives that mode to the last folder only: parents get
    the umask's default (0755 with the usual 022, 0777 with umask 0), so a folder of
    users' music can end up listable, or writable, by every account on the host. And the
    mode is itself masked by the umask, so a strict one (0277) would leave the bot a
    folder it cannot write. Each folder created here is chmodded to exactly 0700; ``mkdir``
    is asked for 0700 first, so in between it is never wider than that. Folders that
    already existed are the operator's and are left as they are.

    Returns:
        The folders created, outermost first.

    Raises:
        OSError: a folder cannot be created (e.g. a parent is a regular file).
    """
    path = Path(os.path.abspath(path))
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    created: list[Path] = []
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            # Made by someone else meanwhile: theirs, not ours to chmod.
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)
        created.append(folder)
    return created


def _prepare_own_folder_sync(folder: Path) -> None:
    """Create one of the store's own folders, and make it 0700 if it already existed.

    ``uploads/`` holds nothing but users' files, so an older install's 0755 folder is
    tightened; the data directory above it may be the operator's.
    """
    if make_private_dirs(folder):
        return
    mode = os.stat(folder).st_mode & 0o777
    if mode != PRIVATE_DIR_MODE:
        os.chmod(folder, PRIVATE_DIR_MODE)
        logger.info("made %s private (mode %04o -> %04o)", folder, mode, PRIVATE_DIR_MODE)


def _temporary_name(name: str) -> str:
    return f".{name}.{uuid4().hex[:12]}{TEMPORARY_SUFFIX}"


async def _chunks(source: ByteSource) -> AsyncIterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            yield bytes(view[start : start + CHUNK_BYTES])
    else:
        async for chunk in source:
            yield chunk


async def _write_atomically(
    path: Path, chunks: AsyncIterable[bytes], *, max_bytes: int
) -> tuple[int, str]:
    """Write ``chunks`` to ``path`` via a temporary file; return (size, SHA-256 hex)."""
    temporary = path.with_name(_temporary_name(path.name))
    digest = hashlib.sha256()
    size = 0
    try:
        # Users' music: readable by the bot's own user only.
        async with aiofiles.open(temporary, "wb", opener=_private_opener) as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLargeError(max_bytes=max_bytes)
                digest.update(chunk)
                await out.write(chunk)
            await out.flush()
            await _fsync(out.fileno())
        await aiofiles.os.replace(temporary, path)
    except BaseException:
        # Plain os call: this must also run when the task is being cancelled.
        with suppress(OSError):
            os.remove(temporary)
        raise
    await _fsync_dir(path.parent)
    return size, digest.hexdigest()


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _fsync_dir_sync(directory: Path) -> None:
    # A rename is durable only once the folder holding it is synced.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_fsync = aiofiles.os.wrap(os.fsync)
_prepare_own_folder = aiofiles.os.wrap(_prepare_own_folder_sync)
_fsync_dir = aiofiles.os.wrap(_fsync_dir_sync)
