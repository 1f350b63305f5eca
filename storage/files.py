"""Files on disk: saved uploads and content-addressed result folders.

Layout below the data directory::

    uploads/<random>.upload            an upload, deleted when its job ends
    results/<ab>/<key>/<name>          the files of one result, ``ab`` = key[:2]

Every write is atomic: data goes to a hidden temporary name in the same folder, is
fsynced, then renamed into place. A result folder is assembled under a temporary name
and renamed as a whole, so a crash can leave hidden temporaries behind (retention
removes them) but never a result folder that looks complete and is not.

A result folder's modification time is when it was last stored or looked up;
retention removes it once that is older than the configured time to live.

Everything here is users' music on what may be a shared host, so every folder the store
creates is 0700 and every file 0600, whatever the process umask (see
:func:`make_private_dirs`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import aiofiles
import aiofiles.os

from storage.errors import DataDirError, InvalidCacheKeyError, UploadTooLargeError

CHUNK_BYTES = 1024 * 1024
TEMPORARY_SUFFIX = ".tmp"
UPLOAD_SUFFIX = ".upload"
"""Every upload's extension: one no demuxer claims, whatever the user named the file."""
PRIVATE_DIR_MODE = 0o700

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,127}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

ByteSource = bytes | AsyncIterable[bytes]
"""Upload data: all of it at once, or chunk by chunk as it arrives from the platform."""

ResultSource = bytes | Path
"""A result file's content, or a file to copy it from (e.g. in a job's temporary folder)."""


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ResultSet:
    key: str
    directory: Path
    files: dict[str, Path]
    """File name -> path, sorted by name."""
    last_used_at: datetime


def is_result_key(name: str) -> bool:
    """Whether ``name`` can be a result key (and so a result folder's name)."""
    return _KEY.fullmatch(name) is not None


def is_temporary(name: str) -> bool:
    """Whether a directory entry is an unfinished write (hidden, ``.tmp`` suffix)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


class FileStore:
    """Uploads and results below one data directory."""

    def __init__(self, data_dir: Path) -> None:
        # Absolute, because upload paths are stored in jobs and must survive a restart
        # from another working directory.
        self.data_dir = Path(os.path.abspath(data_dir))
        self.uploads_dir = self.data_dir / "uploads"
        self.results_dir = self.data_dir / "results"

    async def prepare(self) -> None:
        """Create the folders and prove they are writable, so a read-only data directory
        is reported at start and not at the first upload.

        Raises:
            DataDirError: a folder cannot be created or written.
        """
        for folder in (self.uploads_dir, self.results_dir):
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
        playlist of the server's files. The content alone decides (``separation.sandbox``).

        Raises:
            UploadTooLargeError: more than ``max_bytes`` arrived; nothing is kept.
        """
        path = self.uploads_dir / f"{uuid4().hex}{UPLOAD_SUFFIX}"
        size, digest = await _write_atomically(path, _chunks(source), max_bytes=max_bytes)
        return SavedUpload(path=path, size_bytes=size, sha256=digest)

    def is_upload(self, path: Path) -> bool:
        """Whether ``path`` is a file this store saved (and may therefore delete)."""
        return Path(os.path.abspath(path)).parent == self.uploads_dir

    async def delete_upload(self, path: Path) -> bool:
        """Delete a saved upload; False when it was already gone or is not ours.

        Paths outside the uploads folder are left alone: a CLI job may point at the
        user's own file, which must survive the job.
        """
        if not self.is_upload(path):
            return False
        try:
            await aiofiles.os.remove(path)
        except FileNotFoundError:
            return False
        return True

    def result_dir(self, key: str) -> Path:
        """The folder of a result key (which need not exist).

        Raises:
            InvalidCacheKeyError: the key could name something outside the results folder.
        """
        if not is_result_key(key):
            raise InvalidCacheKeyError(value=key, reason="use 2 to 128 letters, digits, '-' or '_'")
        return self.results_dir / key[:2] / key

    async def store_results(self, key: str, files: Mapping[str, ResultSource]) -> ResultSet:
        """Store the files of a result under ``key``, all or nothing.

        Keys are content addresses, so when the key is already stored (say, by a job
        that finished first with the same input and options) that copy is kept and
        returned.

        Raises:
            InvalidCacheKeyError: a bad key or file name.
            ValueError: no files.
        """
        final = self.result_dir(key)
        if not files:
            raise ValueError("a result needs at least one file")
        for name in files:
            if not _FILE_NAME.fullmatch(name):
                raise InvalidCacheKeyError(value=name, reason="not a plain file name")
        existing = await self.lookup_results(key)
        if existing is not None:
            return existing
        staging = final.parent / _temporary_name(key)
        await _make_private_dirs(staging)
        try:
            for name, source in files.items():
                await _write_atomically(staging / name, _chunks(source))
            await _fsync_dir(staging)
            try:
                await aiofiles.os.rename(staging, final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # Another job stored the same key meanwhile; same key, same content.
                await _rmtree(staging, ignore_errors=True)
        except BaseException:
            # Plain call: this must also run when the task is being cancelled.
            shutil.rmtree(staging, ignore_errors=True)
            raise
        await _fsync_dir(final.parent)
        stored = await self.lookup_results(key)
        assert stored is not None, f"result {key} vanished right after it was stored"
        return stored

    async def lookup_results(self, key: str, *, touch: bool = True) -> ResultSet | None:
        """The stored files for ``key``, or None; ``touch`` restarts its time to live."""
        directory = self.result_dir(key)
        try:
            names = await aiofiles.os.listdir(directory)
            if touch:
                await _touch(directory)
            modified = (await aiofiles.os.stat(directory)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ResultSet(
            key=key,
            directory=directory,
            files={name: directory / name for name in sorted(names) if not name.startswith(".")},
            last_used_at=datetime.fromtimestamp(modified, UTC),
        )

    async def delete_results(self, key: str) -> bool:
        """Delete a stored result; False when there was none."""
        directory = self.result_dir(key)
        doomed = directory.parent / _temporary_name(key)
        try:
            # Rename first, so nobody finds a half-deleted folder under the real name.
            await aiofiles.os.rename(directory, doomed)
        except FileNotFoundError:
            return False
        await _rmtree(doomed)
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

    ``uploads/`` and ``results/`` hold nothing but users' files, so an older install's
    0755 folders are tightened; the data directory above them may be the operator's.
    """
    if make_private_dirs(folder):
        return
    mode = os.stat(folder).st_mode & 0o777
    if mode != PRIVATE_DIR_MODE:
        os.chmod(folder, PRIVATE_DIR_MODE)
        logger.info("made %s private (mode %04o -> %04o)", folder, mode, PRIVATE_DIR_MODE)


def _temporary_name(name: str) -> str:
    return f".{name}.{uuid4().hex[:12]}{TEMPORARY_SUFFIX}"


async def _chunks(source: ByteSource | Path) -> AsyncIterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            yield bytes(view[start : start + CHUNK_BYTES])
    elif isinstance(source, Path):
        async with aiofiles.open(source, "rb") as file:
            while chunk := await file.read(CHUNK_BYTES):
                yield chunk
    else:
        async for chunk in source:
            yield chunk


async def _write_atomically(
    path: Path, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
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
                if max_bytes is not None and size > max_bytes:
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
_make_private_dirs = aiofiles.os.wrap(make_private_dirs)
_prepare_own_folder = aiofiles.os.wrap(_prepare_own_folder_sync)
_fsync_dir = aiofiles.os.wrap(_fsync_dir_sync)
_touch = aiofiles.os.wrap(os.utime)
_rmtree = aiofiles.os.wrap(shutil.rmtree)
