"""One cache entry on disk: its key, its manifest, its verified files and the pin that
holds it in place while it is delivered.

The store that commits, serves and evicts entries is ``separation.cache.results``; its
module docstring says why entries are built this way (a manifest written last and
re-hashed on every hit, a shared ``flock`` per delivery). This module is what a single
entry needs, with no knowledge of the others: a key from an input's hash and settings,
the manifest read and checked, the files verified against it, the pin taken.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_HASH_BLOCK_BYTES = 1 << 20


class ResultPin:
    """Holds a cache entry in place: while any pin on it is open, eviction skips it.

    A shared ``flock`` on the entry's manifest. :meth:`share` gives another holder its
    own pin on the same lock; the lock ends when the last one is released (or garbage
    collected, or the process dies).
    """

    def __init__(self, descriptor: int) -> None:
        self._close = weakref.finalize(self, os.close, descriptor)
        self._descriptor = descriptor

    def share(self) -> ResultPin:
        """A second pin on the same entry, released independently of this one."""
        return ResultPin(os.dup(self._descriptor))

    def release(self) -> None:
        """Let the entry be evicted again (idempotent)."""
        self._close()


@dataclass(frozen=True)
class CacheEntry:
    key: str
    folder: Path
    outputs: dict[str, Path]
    """Output name -> file, in the order they were stored (instrumental first)."""
    metadata: dict[str, Any]
    pin: ResultPin | None = field(default=None, compare=False, repr=False)
    """Held for the caller of ``lookup``/``commit``; release it once the files are sent."""
    stems: dict[str, Path] = field(default_factory=dict)
    """Lossless stems kept for re-rendering (empty when the entry has none)."""


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
        {"version": FORMAT_VERSION, "input": input_sha256, **settings},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest in ``folder`` if it is readable and of this format, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("version") != FORMAT_VERSION:
        return None
    return manifest


def verified_entry(
    key: str, folder: Path, manifest: dict[str, Any], pin: ResultPin
) -> CacheEntry | None:
    """The entry in ``folder`` with its files checked against ``manifest`` (sizes and
    SHA-256), holding ``pin``; None when a file is missing or does not match."""
    try:
        outputs = _verified_files(key, folder, manifest["outputs"])
        stems = _verified_files(key, folder, manifest.get("stems", []))
    except (OSError, KeyError, TypeError):
        logger.warning("cache entry %s is incomplete", key)
        return None
    if outputs is None or stems is None:
        return None
    metadata = dict(manifest.get("metadata", {}))
    return CacheEntry(key, folder, outputs, metadata, pin, stems)


def _verified_files(key: str, folder: Path, items: list[dict[str, Any]]) -> dict[str, Path] | None:
    """Name -> file for manifest ``items``; None when a file does not match."""
    files: dict[str, Path] = {}
    for item in items:
        path = folder / item["file"]
        if path.stat().st_size != item["size"] or file_sha256(path) != item["sha256"]:
            logger.warning("cache entry %s: %s does not match its manifest", key, path.name)
            return None
        files[item["name"]] = path
    return files


def pin_entry(folder: Path) -> ResultPin | None:
    """A shared lock on ``folder``'s manifest, or None when the entry is gone."""
    manifest = folder / MANIFEST
    try:
        descriptor = os.open(manifest, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    pin = ResultPin(descriptor)
    # Blocks only while another process holds the exclusive lock to remove the entry.
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    try:
        same = os.fstat(descriptor).st_ino == manifest.stat().st_ino
    except FileNotFoundError:
        same = False
    if not same:  # removed (renamed away) while we waited for the lock
        pin.release()
        return None
    return pin


def manifest_items(files: dict[str, Path]) -> list[dict[str, Any]]:
    """What a manifest records of ``files``: name, file name, size and SHA-256."""
    return [
        {"name": name, "file": path.name, "size": path.stat().st_size, "sha256": file_sha256(path)}
        for name, path in files.items()
    ]
