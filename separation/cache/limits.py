"""What the result cache may keep: its size on disk, its entries' ages, who goes first.

The limit is on what the cache folder takes on disk, everything the cache writes
included: outputs, the lossless stems kept for re-renders (several times the size of a
song's MP3s), renders, manifests, folders, and staging folders still being written. An
earlier version counted only the outputs, and disk use settled near six times the limit
(issue 20). Sizes are measured, not taken from manifests: ``st_blocks`` (what ``du`` and
the disk see, block rounding included; a cache of small files takes more than the sum of
their sizes), and never less than ``st_size`` (a filesystem that reports no blocks).

Who goes first, when the cache is over its limit:

1. Entries past ``max_age_seconds`` (users' music is not kept longer) and entries whose
   manifest cannot be read (never served), whatever the size.
2. Renders (a re-mix of a song's stems, seconds of ffmpeg to redo: ``metadata["render_of"]``
   names the song's entry), least recently used first.
3. Songs (a model run to redo), least recently used first, except a song used within
   ``min_age_seconds``, and a song whose render is still there after step 2 (being
   delivered): its stems are what its buttons need.
4. Only when a new song comes in and young songs alone are over the limit: young songs,
   oldest first, until the cache is over by no more than the new song. (The limit is too
   small for the traffic then; the log says so. Without this, a flood of songs within
   ``min_age_seconds`` could fill the disk.)

A pinned entry (being delivered) is never removed, and an entry named in ``keep`` (the
song a render is being made from) is never chosen. So one user's renders can only push
out renders and songs nobody used for ``min_age_seconds``, never another user's fresh
song. When the songs used within ``min_age_seconds`` fit in the limit, the cache stays
within it but for the one entry being committed or delivered (a render storm included).
When they do not (the limit is too small for the traffic; the log says so), a new song
still keeps it over by no more than itself, and a render may add itself on top until it
is delivered: it is the first to go then.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

RENDER_OF = "render_of"
"""Metadata key of an entry made from a song's entry (a render; a video would be one too):
the song entry's key. Such entries are evicted first, and never make room by evicting it."""


@dataclass(frozen=True)
class CachePolicy:
    max_bytes: int = 5 * 1024**3
    """What the whole cache folder may take on disk (see the module docstring)."""
    max_age_seconds: float = 24 * 3600.0
    """Entries older than this (since creation) are neither served nor kept."""
    min_age_seconds: float = 3600.0
    """Songs used more recently than this are not evicted to make room (renders are): a
    user's buttons keep working for this long whatever other users render. (What keeps
    an entry that is being delivered is its pin.)"""


@dataclass(frozen=True)
class CacheUsage:
    """The cache's disk use when last measured, against its limit."""

    used_bytes: int
    limit_bytes: int


@dataclass(frozen=True)
class StoredEntry:
    """One committed entry as eviction sees it."""

    key: str
    folder: Path
    disk_bytes: int
    last_used: float
    created_at: float
    render_of: str | None
    """The song entry this render was made from; None for a song."""
    readable: bool = True


Remover = Callable[[StoredEntry, str], bool]
"""Removes an entry unless it is pinned, giving the reason for the log; True when gone."""


@dataclass(frozen=True)
class Eviction:
    removed: list[str]
    """The keys removed, in order."""
    used_bytes: int
    """The cache's disk use afterwards."""


def disk_bytes(path: Path) -> int:
    """What ``path`` takes on disk, folders and everything below them included (0 when
    it is gone)."""
    try:
        status = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return 0
    total = max(status.st_blocks * 512, status.st_size)
    if stat.S_ISDIR(status.st_mode):
        try:
            children = list(os.scandir(path))
        except FileNotFoundError:  # removed while we looked
            return total
        total += sum(disk_bytes(Path(child.path)) for child in children)
    return total


def read_entry(manifest_path: Path, manifest: dict[str, object] | None) -> StoredEntry | None:
    """The entry whose manifest is ``manifest_path`` (``manifest``: its parsed content,
    None when unreadable), or None when it vanished meanwhile."""
    folder = manifest_path.parent
    try:
        last_used = manifest_path.stat().st_mtime
    except OSError:
        return None
    size = disk_bytes(folder)
    if manifest is None:
        return StoredEntry(folder.name, folder, size, last_used, last_used, None, readable=False)
    metadata = manifest.get("metadata")
    source = metadata.get(RENDER_OF) if isinstance(metadata, dict) else None
    created = manifest.get("created_at")
    return StoredEntry(
        folder.name,
        folder,
        size,
        last_used,
        float(created) if isinstance(created, int | float) else last_used,
        str(source) if source else None,
    )


def evict(
    entries: Iterable[StoredEntry],
    used_bytes: int,
    policy: CachePolicy,
    now: float,
    remove: Remover,
    *,
    keep: frozenset[str] = frozenset(),
    new_song_bytes: int | None = None,
) -> Eviction:
    """Remove entries in the order of the module docstring until ``used_bytes`` (the whole
    folder's disk use) is within ``policy.max_bytes``; ``keep``: keys never chosen.

    ``new_song_bytes``: a song being committed (counted in ``used_bytes`` already). When
    young songs alone fill the cache, the oldest of them make room until the cache is
    over by no more than the new song (step 4): a flood of new songs cannot fill the disk.
    A render never does this; it stays over by itself until it is delivered."""
    remaining = [entry for entry in entries if entry.key not in keep]
    removed: list[str] = []

    def try_remove(entry: StoredEntry, reason: str) -> None:
        nonlocal used_bytes
        if remove(entry, reason):
            removed.append(entry.key)
            remaining.remove(entry)
            used_bytes -= entry.disk_bytes

    for entry in list(remaining):
        if not entry.readable:
            try_remove(entry, "unreadable manifest")
        elif now - entry.created_at > policy.max_age_seconds:
            try_remove(entry, "expired")
    renders = sorted((e for e in remaining if e.render_of), key=lambda e: e.last_used)
    for entry in renders:
        if used_bytes <= policy.max_bytes:
            break
        try_remove(entry, "evicted (render)")
    still_rendered = {entry.render_of for entry in remaining if entry.render_of}
    songs = sorted((e for e in remaining if not e.render_of), key=lambda e: e.last_used)
    for entry in songs:
        if used_bytes <= policy.max_bytes:
            break
        if entry.key in still_rendered or now - entry.last_used < policy.min_age_seconds:
            continue
        try_remove(entry, "evicted")
    if new_song_bytes is None:
        return Eviction(removed, used_bytes)
    for entry in [e for e in songs if e in remaining and e.key not in still_rendered]:
        if used_bytes - new_song_bytes <= policy.max_bytes:
            break
        logger.warning(
            "cache: songs used in the last %.0f s fill its %d bytes; the oldest make room "
            "for a new one (raise pool.cache_max_bytes)",
            policy.min_age_seconds,
            policy.max_bytes,
        )
        try_remove(entry, "evicted though young, to make room for a new song")
    return Eviction(removed, used_bytes)
