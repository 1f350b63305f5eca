"""The folder store: blobs as files, on a local disk or a mount several hosts share."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.distributed.blobs.atomic import (
    PRIVATE_FILE_MODE,
    ReadError,
    WriteError,
    bytes_chunks,
    copy_atomically_sync,
    file_chunks,
    temporary_name,
)
from bot.distributed.blobs.base import CHECK_TIMEOUT_SECONDS, BlobInfo, BlobStore
from bot.distributed.blobs.keys import require_prefix, validate_key, validate_prefix
from bot.distributed.errors import BlobNotFoundError, BlobStoreError
from storage.files import make_private_dirs


class LocalBlobStore(BlobStore):
    """Blobs as files below ``root``: key ``a/b/c`` is the file ``root/a/b/c``.

    ``root`` may be a shared mount that workers on other hosts use too, so writes are
    renames within one folder (atomic on local disks and NFS alike) and a reader never
    sees a half-written file. Folders the store creates are 0700 and files 0600: this
    is users' music. Folders a delete leaves empty are removed, so ``results/<key>/``
    folders do not pile up.

    Unlike S3, a key cannot be both a blob and a folder (``a`` and ``a/b``); writing
    the second fails with :class:`BlobStoreError`. Keys as the bot builds them never
    clash that way.
    """

    def __init__(self, root: Path) -> None:
        # Absolute: the store must not move if the process changes its directory.
        self.root = Path(os.path.abspath(root))

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _failure(self, exc: OSError, key: str | None = None) -> BlobStoreError:
        return BlobStoreError(
            store=self.describe(), reason=exc.strerror or type(exc).__name__, key=key
        )

    async def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._put_file_sync, key, target, Path(path))

    def _put_file_sync(self, key: str, target: Path, source: Path) -> None:
        with open(source, "rb") as reader:

            def chunks() -> Iterator[bytes]:
                reader.seek(0)
                return file_chunks(reader)

            self._store_sync(key, target, chunks)

    async def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._store_sync, key, target, lambda: bytes_chunks(data))

    def _store_sync(self, key: str, target: Path, chunks: Callable[[], Iterator[bytes]]) -> None:
        # A delete (maybe on another host) prunes folders it empties, so the folder we
        # just made can vanish before our temporary file is created in it: make it
        # again and retry. Nothing has been read from the source at that point.
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                make_private_dirs(target.parent)
                copy_atomically_sync(chunks(), target)
                return
            except ReadError as exc:
                raise exc.error from None  # the caller's file: not the store's fault
            except WriteError as exc:
                vanished = isinstance(exc.error, FileNotFoundError) and exc.opening
                if vanished and attempt < attempts:
                    continue
                raise self._failure(exc.error, key) from None
            except OSError as exc:  # make_private_dirs
                raise self._failure(exc, key) from None

    async def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        await asyncio.to_thread(self._get_file_sync, key, source, Path(path))

    def _get_file_sync(self, key: str, source: Path, target: Path) -> None:
        try:
            reader = open(source, "rb")  # closed by the with block below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(store=self.describe(), key=key) from None
        except OSError as exc:
            raise self._failure(exc, key) from None
        with reader:
            make_private_dirs(target.parent)
            try:
                copy_atomically_sync(file_chunks(reader), target)
            except ReadError as exc:
                raise self._failure(exc.error, key) from None
            except WriteError as exc:
                raise exc.error from None  # the caller's file: not the store's fault

    async def get_bytes(self, key: str) -> bytes:
        source = self._path(key)
        try:
            return await asyncio.to_thread(source.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFoundError(store=self.describe(), key=key) from None
        except OSError as exc:
            raise self._failure(exc, key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            raise self._failure(exc, key) from None

    def _delete_sync(self, path: Path) -> bool:
        try:
            os.remove(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        # Prune the folders this left empty, up to (not including) the root. rmdir
        # refuses a folder that is not empty, so a concurrent writer's folder survives.
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = folder.parent
        return True

    async def delete_prefix(self, prefix: str) -> int:
        require_prefix(prefix)
        deleted = 0
        for key in await self.list_keys(prefix):
            path = self._path(key)
            try:
                deleted += await asyncio.to_thread(self._delete_sync, path)
            except OSError as exc:
                raise self._failure(exc, key) from None
        return deleted

    async def list_blobs(self, prefix: str) -> list[BlobInfo]:
        validate_prefix(prefix)
        try:
            return await asyncio.to_thread(self._list_sync, prefix)
        except OSError as exc:
            raise self._failure(exc) from None

    def _list_sync(self, prefix: str) -> list[BlobInfo]:
        # Walk only the deepest folder the prefix names: "results/ab" -> results/.
        folder = prefix.rpartition("/")[0]
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        blobs: list[BlobInfo] = []

        def fail(exc: OSError) -> None:
            # A folder that does not exist (or vanished meanwhile) holds no keys.
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise exc

        for directory, dirnames, filenames in os.walk(base, onerror=fail):
            # Hidden names are temporaries or not ours (no key has a hidden segment).
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            relative = Path(directory).relative_to(self.root).parts
            for name in filenames:
                if name.startswith("."):
                    continue
                key = "/".join((*relative, name))
                if key.startswith(prefix):
                    try:
                        stat = os.stat(os.path.join(directory, name))
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    blobs.append(BlobInfo(key, stat.st_size, stat.st_mtime))
        return sorted(blobs, key=lambda blob: blob.key)

    async def check(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._check_sync), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            raise BlobStoreError(
                store=self.describe(),
                reason=f"no answer within {CHECK_TIMEOUT_SECONDS:g} s (a hung mount?)",
            ) from None
        except OSError as exc:
            raise self._failure(exc) from None

    def _check_sync(self) -> None:
        make_private_dirs(self.root)
        probe = self.root / temporary_name("probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        os.remove(probe)

    async def close(self) -> None:
        return None
