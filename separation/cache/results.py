"""Finished outputs on disk, keyed by what produced them, so a repeated song costs nothing.

The key is the SHA-256 of the input bytes plus everything that changes the output bytes
(model weights, separation options, stem mode, encoding, size budget, fallback title), so
two requests share an entry only when they would produce identical files.

Why it is built this way:

* Entries are written into a private staging folder and renamed into place, with a
  manifest (size and SHA-256 of every file) written last: a crash never leaves an entry
  that looks complete, and a hit re-hashes the files, so a truncated or edited file is
  recomputed instead of being sent to a user.
* The cache is bounded by what its folder takes on disk (stems, renders, manifests and
  staging folders included) and by age (results are users' music: they are not kept
  longer than ``max_age_seconds``). Each commit makes room for itself before it becomes
  visible, renders going before songs and a song never for its own render
  (``separation.cache.limits`` has the order and why).
* An entry being delivered is never evicted: every entry handed out comes with a
  :class:`ResultPin`, a shared ``flock`` on its manifest that the caller holds until the
  files are uploaded or copied. Eviction takes the exclusive lock without waiting and
  skips an entry it cannot get, so a pin protects against every process sharing the
  folder, for exactly as long as the delivery takes, and dies with its process. (A
  minimum age used to stand in for this; a small cache evicted fresh results before
  they were sent.) ``min_age_seconds`` keeps a recently used song's stems for its
  buttons while other users render.
* An entry may also keep the model's stems losslessly (``stems``: FLAC, before any
  gain), listed and verified like the outputs: re-rendering with another key, tempo or
  guide vocal (``separation.rendering.controls``) needs them, never the model. They count against
  the size limit and leave with their entry.
* Last use is the manifest's mtime, and creation time is in the manifest, so the state
  is the folder itself (no index to get out of sync, several processes may share it).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from separation.cache.entries import (
    FORMAT_VERSION,
    MANIFEST,
    CacheEntry,
    ResultPin,
    cache_key,
    file_sha256,
    manifest_items,
    pin_entry,
    read_manifest,
    verified_entry,
)
from separation.cache.limits import (
    RENDER_OF,
    CachePolicy,
    CacheUsage,
    StoredEntry,
    disk_bytes,
    evict,
    read_entry,
)
from separation.workdir import private_dirs

__all__ = [
    "MANIFEST",
    "RENDER_OF",
    "CacheEntry",
    "CachePolicy",
    "CacheUsage",
    "ResultCache",
    "ResultPin",
    "cache_key",
    "file_sha256",
]

logger = logging.getLogger(__name__)

_STAGING = ".staging"
_POINTERS = ".stems"
"""Which entry keeps a song's stems, by the song alone (``point_at_stems``): small files
beside the entries, never entries themselves, so eviction neither counts nor chooses
them; they expire with the entries they name."""
_STALE_STAGING_SECONDS = 24 * 3600.0


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
        self._usage: CacheUsage | None = None
        private_dirs(root / _STAGING)

    def _folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    # -- reading ----------------------------------------------------------------------
    def lookup(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``, pinned for the caller, or None.

        A corrupt or expired entry is removed (unless someone still delivers it).
        """
        folder = self._folder(key)
        with self._lock:
            manifest = read_manifest(folder)
            if manifest is None:
                if folder.exists():
                    self._remove_unpinned(folder, "unreadable manifest")
                return None
            if self._clock() - manifest["created_at"] > self.policy.max_age_seconds:
                self._remove_unpinned(folder, "expired")
                return None
            pin = pin_entry(folder)
            if pin is None:  # removed by another process a moment ago
                return None
            self._touch(folder)
        entry = verified_entry(key, folder, manifest, pin)
        if entry is None:
            pin.release()
            with self._lock:
                self._remove_unpinned(folder, "corrupt")
        return entry

    def touch(self, key: str) -> bool:
        """Count ``key``'s entry as used now, without reading its files; False when it
        is not there. A render served from the cache touches the song it was made from,
        so a singer who only presses buttons already rendered keeps the song's stems
        young (``pool.cache_min_age_minutes``) and least recently used last."""
        folder = self._folder(key)
        with self._lock:
            if read_manifest(folder) is None:
                return False
            try:
                self._touch(folder)
            except OSError:  # removed by another process a moment ago
                return False
        return True

    def _touch(self, folder: Path) -> None:
        now = self._clock()
        os.utime(folder / MANIFEST, (now, now))

    # -- writing ----------------------------------------------------------------------
    def staging(self) -> Path:
        """A new private folder to write outputs into before :meth:`commit`."""
        private_dirs(self.root / _STAGING)
        return Path(tempfile.mkdtemp(prefix="entry-", dir=self.root / _STAGING))

    def commit(
        self,
        key: str,
        staging: Path,
        outputs: dict[str, Path],
        metadata: dict[str, Any],
        stems: dict[str, Path] | None = None,
    ) -> CacheEntry:
        """Move the files in ``staging`` into the entry for ``key``, pinned for the caller.

        An old entry under the same key is replaced, unless someone is delivering it: then
        it stays (same key, same files) and is returned instead.
        ``outputs`` (and ``stems``) map names to files inside ``staging``; ``metadata``
        must be JSON.
        """
        stems = stems or {}
        manifest = {
            "version": FORMAT_VERSION,
            "key": key,
            "created_at": self._clock(),
            "outputs": manifest_items(outputs),
            "stems": manifest_items(stems),
            "metadata": metadata,
        }
        partial = staging / f".{MANIFEST}.partial"
        partial.write_text(json.dumps(manifest), encoding="utf-8")
        partial.replace(staging / MANIFEST)
        self._touch(staging)
        pin = pin_entry(staging)  # taken before the entry is visible: no moment unpinned
        assert pin is not None
        folder = self._folder(key)
        with self._lock:
            if folder.exists() and not self._remove_unpinned(folder, "replaced"):
                kept = self._keep_pinned(key, folder)
                if kept is not None:
                    pin.release()
                    self.discard_staging(staging)
                    return kept
            # The staging folder is part of the cache already: making room now keeps
            # the cache within its limit once the entry is in place. A render never
            # makes room by evicting the song it was made from.
            private_dirs(folder.parent)  # before measuring: it is on disk too
            source = metadata.get(RENDER_OF)
            try:
                self._evict_locked(
                    keep=frozenset({key, source} if source else {key}),
                    new_song_bytes=None if source else disk_bytes(staging),
                )
            except OSError:  # the result is made: deliver it, the next sweep retries
                logger.exception("cache: making room for %s failed", key[:12])
            self._move_into_place(staging, folder)
        return CacheEntry(
            key,
            folder,
            {name: folder / path.name for name, path in outputs.items()},
            metadata,
            pin,
            {name: folder / path.name for name, path in stems.items()},
        )

    @staticmethod
    def _move_into_place(staging: Path, folder: Path) -> None:
        try:
            private_dirs(folder.parent)
            staging.rename(folder)
        except FileNotFoundError:  # emptied and removed by an eviction meanwhile
            private_dirs(folder.parent)
            staging.rename(folder)

    def _keep_pinned(self, key: str, folder: Path) -> CacheEntry | None:
        """The entry someone is delivering, pinned again, if it is intact (same key, same
        files as the new one); a damaged one is moved aside for the new one (its
        holder is sending damaged files either way)."""
        manifest = read_manifest(folder)
        pin = pin_entry(folder)
        if manifest is not None and pin is not None:
            entry = verified_entry(key, folder, manifest, pin)
            if entry is not None:
                return entry
            pin.release()
        self._remove(folder, "damaged, replaced while being delivered")
        return None

    def discard_staging(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    # -- stems pointers -----------------------------------------------------------------
    def point_at_stems(self, pointer: str, key: str) -> None:
        """Remember under ``pointer`` (a key of the song without its encoding) that
        ``key``'s entry keeps the song's stems: another format of it is an encode from
        them (issue 23). Replaced atomically; one naming a gone entry is harmless."""
        folder = self.root / _POINTERS
        private_dirs(folder)
        partial = folder / f".{pointer}.partial"
        partial.write_text(key, encoding="utf-8")
        partial.replace(folder / pointer)

    def stems_pointed_at(self, pointer: str) -> str | None:
        """The key ``pointer`` names (its entry may be gone since), or None."""
        path = self.root / _POINTERS / pointer
        try:
            if self._clock() - path.stat().st_mtime > self.policy.max_age_seconds:
                return None  # as old as any entry may be: what it names is gone
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _remove_stale_pointers(self, now: float) -> None:
        for path in (self.root / _POINTERS).glob("*"):
            try:
                if now - path.stat().st_mtime > self.policy.max_age_seconds:
                    path.unlink()
            except OSError:
                continue

    # -- bounding ---------------------------------------------------------------------
    def evict(self) -> list[str]:
        """Remove expired entries, then renders and songs until within the size limit
        (``separation.cache.limits``). Returns the keys removed."""
        with self._lock:
            removed = self._evict_locked(keep=frozenset())
            self._remove_stale_staging(self._clock())
            self._remove_stale_pointers(self._clock())
        return removed

    def _evict_locked(
        self, *, keep: frozenset[str], new_song_bytes: int | None = None
    ) -> list[str]:
        now = self._clock()
        entries = [
            entry
            for manifest_path in self.root.glob(f"??/*/{MANIFEST}")
            if (entry := read_entry(manifest_path, read_manifest(manifest_path.parent))) is not None
        ]
        eviction = evict(
            entries,
            disk_bytes(self.root),
            self.policy,
            now,
            self._remove_entry,
            keep=keep,
            new_song_bytes=new_song_bytes,
        )
        self._usage = CacheUsage(eviction.used_bytes, self.policy.max_bytes)
        if eviction.used_bytes > self.policy.max_bytes:
            logger.warning(
                "cache: %d bytes on disk, over its limit of %d: the rest is being delivered "
                "or is a song used in the last %.0f s",
                eviction.used_bytes,
                self.policy.max_bytes,
                self.policy.min_age_seconds,
            )
        return eviction.removed

    def _remove_entry(self, entry: StoredEntry, reason: str) -> bool:
        return self._remove_unpinned(entry.folder, reason)

    def size_bytes(self) -> int:
        """What the cache folder takes on disk now (a fresh measurement)."""
        return disk_bytes(self.root)

    def usage(self) -> CacheUsage | None:
        """Disk use against the limit as the last commit or eviction measured it (None
        before the first): cheap enough to read on every metrics scrape."""
        return self._usage

    def _remove_stale_staging(self, now: float) -> None:
        # "trash-" folders are removals a crash interrupted.
        staged = (self.root / _STAGING).glob("*-*")
        for folder in staged:
            try:
                stale = now - folder.stat().st_mtime > _STALE_STAGING_SECONDS
            except OSError:
                continue
            if stale:
                shutil.rmtree(folder, ignore_errors=True)

    def _remove_unpinned(self, folder: Path, reason: str) -> bool:
        """Remove an entry unless a pin holds it; True when it is gone."""
        try:
            descriptor = os.open(folder / MANIFEST, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._remove(folder, reason)  # no manifest: nothing can pin it
            return True
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("cache: keeping %s (%s, but being delivered)", folder.name, reason)
                return False
            self._remove(folder, reason)
            return True
        finally:
            os.close(descriptor)

    def _remove(self, folder: Path, reason: str) -> None:
        logger.info("cache: removing %s (%s)", folder.name, reason)
        # Rename first so a half-deleted folder is never mistaken for an entry.
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=self.root / _STAGING))
        try:
            folder.rename(trash / folder.name)
        except OSError:
            pass
        shutil.rmtree(trash, ignore_errors=True)
        # An empty prefix folder takes a block on disk too; up to 256 of them would add
        # up. A commit recreates it (``_move_into_place``).
        try:
            folder.parent.rmdir()
        except OSError:  # not empty, or gone
            pass
