"""Finished outputs on disk, keyed by what produced them, so a repeated song costs nothing.

The key is the SHA-256 of the input bytes plus everything that changes the output bytes
(model weights, separation options, stem mode, encoding, size budget, fallback title), so
two requests share an entry only when they would produce identical files.

Why it is built this way:

* Entries are written into a private staging folder and renamed into place, with a
  manifest (size and SHA-256 of every file) written last: a crash never leaves an entry
  that looks complete, and a hit re-hashes the files, so a truncated or edited file is
  recomputed instead of being sent to a user.
* The cache is bounded on disk by size (least recently used first) and by age (results
  are users' music: they are not kept longer than ``max_age_seconds``). An entry used
  within ``min_age_seconds`` is never evicted, because callers are still copying or
  uploading its files; the cache may exceed its size for that long.
* Last use is the manifest's mtime, and creation time is in the manifest, so the state
  is the folder itself (no index to get out of sync, several processes may share it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_FORMAT_VERSION = 1
_HASH_BLOCK_BYTES = 1 << 20
_STAGING = ".staging"
_STALE_STAGING_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class CachePolicy:
    max_bytes: int = 5 * 1024**3
    max_age_seconds: float = 24 * 3600.0
    """Entries older than this (since creation) are neither served nor kept."""
    min_age_seconds: float = 600.0
    """Entries used more recently than this are never evicted (callers still read them)."""


@dataclass(frozen=True)
class CacheEntry:
    key: str
    folder: Path
    outputs: dict[str, Path]
    """Output name -> file, in the order they were stored (instrumental first)."""
    metadata: dict[str, Any]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (inputs may be hundreds of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def cache_key(input_sha256: str, settings: dict[str, Any]) -> str:
    """The entry key for an input and everything that shapes its outputs."""
    canonical = json.dumps(
        {"version": _FORMAT_VERSION, "input": input_sha256, **settings},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResultCache:
    """A folder of finished results; every method is blocking (call it from a thread)."""

    def __init__(
        self, root: Path, policy: CachePolicy, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self.policy = policy
        self._clock = clock
        # Guards the decisions "serve this entry" and "delete this entry" against each
        # other; hashing and copying happen outside it.
        self._lock = threading.Lock()
        (root / _STAGING).mkdir(parents=True, exist_ok=True)

    def _folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    # -- reading ----------------------------------------------------------------------
    def lookup(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``, or None (a corrupt or expired entry is removed)."""
        folder = self._folder(key)
        with self._lock:
            manifest = self._read_manifest(folder)
            if manifest is None:
                if folder.exists():
                    self._remove(folder, "unreadable manifest")
                return None
            if self._clock() - manifest["created_at"] > self.policy.max_age_seconds:
                if not self._recently_used(folder):  # else a caller may still be reading it
                    self._remove(folder, "expired")
                return None
            self._touch(folder)  # protects it from eviction while we verify and serve
        entry = self._verify(key, folder, manifest)
        if entry is None:
            with self._lock:
                self._remove(folder, "corrupt")
        return entry

    def _read_manifest(self, folder: Path) -> dict[str, Any] | None:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("version") != _FORMAT_VERSION:
            return None
        return manifest

    def _verify(self, key: str, folder: Path, manifest: dict[str, Any]) -> CacheEntry | None:
        outputs: dict[str, Path] = {}
        try:
            for item in manifest["outputs"]:
                path = folder / item["file"]
                if path.stat().st_size != item["size"] or file_sha256(path) != item["sha256"]:
                    logger.warning("cache entry %s: %s does not match its manifest", key, path.name)
                    return None
                outputs[item["name"]] = path
        except (OSError, KeyError, TypeError):
            logger.warning("cache entry %s is incomplete", key)
            return None
        return CacheEntry(key, folder, outputs, dict(manifest.get("metadata", {})))

    def _recently_used(self, folder: Path) -> bool:
        try:
            last_used = (folder / MANIFEST).stat().st_mtime
        except OSError:
            return False
        return self._clock() - last_used < self.policy.min_age_seconds

    def _touch(self, folder: Path) -> None:
        now = self._clock()
        os.utime(folder / MANIFEST, (now, now))

    # -- writing ----------------------------------------------------------------------
    def staging(self) -> Path:
        """A new private folder to write outputs into before :meth:`commit`."""
        (self.root / _STAGING).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="entry-", dir=self.root / _STAGING))

    def commit(
        self, key: str, staging: Path, outputs: dict[str, Path], metadata: dict[str, Any]
    ) -> CacheEntry:
        """Move the files in ``staging`` into the entry for ``key`` (replacing an old one).

        ``outputs`` maps names to files inside ``staging``; ``metadata`` must be JSON.
        """
        items = [
            {
                "name": name,
                "file": path.name,
                "size": path.stat().st_size,
                "sha256": file_sha256(path),
            }
            for name, path in outputs.items()
        ]
        manifest = {
            "version": _FORMAT_VERSION,
            "key": key,
            "created_at": self._clock(),
            "outputs": items,
            "metadata": metadata,
        }
        partial = staging / f".{MANIFEST}.partial"
        partial.write_text(json.dumps(manifest), encoding="utf-8")
        partial.replace(staging / MANIFEST)
        self._touch(staging)
        folder = self._folder(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if folder.exists():
                self._remove(folder, "replaced")
            staging.rename(folder)
        return CacheEntry(
            key, folder, {name: folder / path.name for name, path in outputs.items()}, metadata
        )

    def discard_staging(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    # -- bounding ---------------------------------------------------------------------
    def evict(self) -> list[str]:
        """Remove expired entries, then least recently used ones until under the size limit.

        Returns the keys removed.
        """
        now = self._clock()
        removed: list[str] = []
        with self._lock:
            entries = []  # (last_used, size, created_at, folder)
            for manifest_path in self.root.glob(f"??/*/{MANIFEST}"):
                folder = manifest_path.parent
                manifest = self._read_manifest(folder)
                try:
                    last_used = manifest_path.stat().st_mtime
                except OSError:
                    continue
                if manifest is None:
                    created, size = last_used, _folder_size(folder)
                else:
                    created = manifest["created_at"]
                    size = sum(item["size"] for item in manifest["outputs"])
                entries.append((last_used, size, created, folder))
            entries.sort(key=lambda entry: entry[0])
            total = sum(entry[1] for entry in entries)
            for last_used, size, created, folder in entries:
                if now - last_used < self.policy.min_age_seconds:
                    continue
                if now - created > self.policy.max_age_seconds or total > self.policy.max_bytes:
                    self._remove(folder, "evicted")
                    removed.append(folder.name)
                    total -= size
            self._remove_stale_staging(now)
        return removed

    def size_bytes(self) -> int:
        return sum(_folder_size(path.parent) for path in self.root.glob(f"??/*/{MANIFEST}"))

    def _remove_stale_staging(self, now: float) -> None:
        for folder in (self.root / _STAGING).glob("entry-*"):
            try:
                stale = now - folder.stat().st_mtime > _STALE_STAGING_SECONDS
            except OSError:
                continue
            if stale:
                shutil.rmtree(folder, ignore_errors=True)

    def _remove(self, folder: Path, reason: str) -> None:
        logger.info("cache: removing %s (%s)", folder.name, reason)
        # Rename first so a half-deleted folder is never mistaken for an entry.
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=self.root / _STAGING))
        try:
            folder.rename(trash / folder.name)
        except OSError:
            pass
        shutil.rmtree(trash, ignore_errors=True)


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
