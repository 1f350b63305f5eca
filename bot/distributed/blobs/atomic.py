"""Files written whole or not at all: what the folder store and every download rely on.

A blob is written to a hidden temporary name beside its target (the same shape as
``storage.files``' temporaries, which retention knows), fsynced, then renamed into
place, so a reader on any host sees the whole file or none. Reads go through
:func:`read_chunk`, one seam for the tests to fail a copy midway.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO
from uuid import uuid4

from storage.files import CHUNK_BYTES, TEMPORARY_SUFFIX

PRIVATE_FILE_MODE = 0o600


class ReadError(Exception):
    """A copy's source failed; wraps the OSError so it is not taken for the target's."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class WriteError(Exception):
    """A copy's target failed; ``opening``: while creating the temporary file."""

    def __init__(self, error: OSError, *, opening: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.opening = opening


def temporary_name(name: str) -> str:
    # Same shape as storage.files' temporaries (hidden, .tmp), which retention knows.
    return f".{name}.{uuid4().hex[:12]}{TEMPORARY_SUFFIX}"


def read_chunk(reader: IO[bytes], size: int) -> bytes:
    """One read from a file being copied or uploaded: the tests' seam to fail midway."""
    return reader.read(size)


def read_exactly(reader: IO[bytes], size: int) -> bytes:
    """``size`` bytes from ``reader``, fewer only at the end of the file."""
    pieces: list[bytes] = []
    left = size
    while left > 0:
        piece = read_chunk(reader, left)
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def file_chunks(reader: IO[bytes]) -> Iterator[bytes]:
    """``reader``'s bytes in chunks; a failed read is a :class:`ReadError`."""
    while True:
        try:
            chunk = read_chunk(reader, CHUNK_BYTES)
        except OSError as exc:
            raise ReadError(exc) from exc
        if not chunk:
            return
        yield chunk


def bytes_chunks(data: bytes) -> Iterator[bytes]:
    """``data`` in the same chunks a file is copied in."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


class AtomicFile:
    """A file written under a hidden temporary name beside ``target``, then renamed.

    ``commit`` fsyncs and renames; ``discard`` removes the temporary and never raises,
    so it can run on any failure, a cancelled task included.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temporary = target.with_name(temporary_name(target.name))
        self._file: IO[bytes] | None = None

    def open(self) -> None:
        descriptor = os.open(
            self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE
        )
        try:
            # Exactly 0600 whatever the umask: users' music, on what may be a shared host.
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
        except BaseException:
            os.close(descriptor)
            self.discard()
            raise
        self._file = open(descriptor, "wb")  # closed by commit() or discard()

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "open() first"
        self._file.write(chunk)

    def commit(self) -> None:
        assert self._file is not None, "open() first"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.temporary, self.target)
        fsync_dir(self.target.parent)

    def discard(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.close()
            self._file = None
        with suppress(OSError):
            os.remove(self.temporary)


def copy_atomically_sync(chunks: Iterator[bytes], target: Path) -> None:
    """Write ``chunks`` to ``target`` through an :class:`AtomicFile`.

    Raises:
        ReadError: from ``chunks`` (the source).
        WriteError: the target could not be written; its temporary is gone.
    """
    out = AtomicFile(target)
    try:
        try:
            out.open()
        except OSError as exc:
            raise WriteError(exc, opening=True) from exc
        for chunk in chunks:
            try:
                out.write(chunk)
            except OSError as exc:
                raise WriteError(exc) from exc
        try:
            out.commit()
        except OSError as exc:
            raise WriteError(exc) from exc
    except BaseException:
        out.discard()
        raise


def fsync_dir(directory: Path) -> None:
    # A rename is durable only once the folder holding it is synced; some filesystems
    # (and shared mounts) refuse to sync a folder, which costs durability, not data.
    with suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
