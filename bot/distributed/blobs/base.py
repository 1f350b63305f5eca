"""The contract every blob store keeps; see the package docstring for its promises."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

CHECK_TIMEOUT_SECONDS = 5.0
"""``check()`` answers a readiness probe, which must not hang on a silent server."""


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob, as a listing returns it."""

    key: str
    size: int
    modified: float
    """When it was written (Unix time)."""


class BlobStore(abc.ABC):
    """Named immutable-by-convention blobs; see the module docstring for the promises."""

    @abc.abstractmethod
    async def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key``; readers see all of it or nothing.

        Raises:
            OSError: ``path`` cannot be read (nothing is stored).
            BlobStoreError: the store failed (nothing is stored).
        """

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; readers see all of it or nothing."""

    @abc.abstractmethod
    async def get_file(self, key: str, path: Path) -> None:
        """Write the blob to ``path`` (0600; missing folders are created 0700).

        The data goes to a temporary file in ``path``'s folder that is renamed over
        ``path`` once complete, so ``path`` is never half written; memory use does not
        grow with the blob's size.

        Raises:
            BlobNotFoundError: no such blob (``path`` is left as it was).
            OSError: ``path`` cannot be written.
        """

    @abc.abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """The whole blob, in memory: for small ones (manifests).

        Raises:
            BlobNotFoundError: no such blob.
        """

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Delete a blob; a missing one is fine (two cleaners may race)."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with ``prefix`` (which must not be empty:
        wiping the whole store is never what a caller means); return how many."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Sorted keys starting with ``prefix`` (plain string prefix, as in S3)."""
        return [blob.key for blob in await self.list_blobs(prefix)]

    @abc.abstractmethod
    async def list_blobs(self, prefix: str) -> list[BlobInfo]:
        """The blobs whose keys start with ``prefix``, sorted by key, with their sizes and
        when they were written: what a cache bounded by bytes and age measures."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Prove the store is reachable and writable (for ``/readyz`` and
        ``karaoke-bot check``), within a few seconds.

        Raises:
            BlobStoreError: with a one-line reason an admin can act on.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the store may be used again afterwards."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the blobs are, for logs and admins; never includes credentials."""
