"""The shared result cache keeps users' music no longer than ``pool.cache_max_age_hours``,
and takes no more than ``blobs.cache_max_bytes`` of the blob store.

On one host the pool's cache bounds itself; results in the blob store are bounded here,
by every worker in turn (deleting twice is harmless): after each result it shares, and
every few minutes. Everything under ``results/`` counts, as measured by the store's own
listing: songs, their lossless stems, renders, manifests and results still being written.

- A result's age is the ``created_at`` of its manifest, written last; past
  ``pool.cache_max_age_hours`` (or unreadable) it is deleted.
- Over the byte limit, renders go first (they take seconds to redo from the stems), the
  oldest first, then songs, the oldest first; the result just shared and the song it was
  rendered from are kept, so the limit holds within one entry.
- A result whose manifest was never written (a worker killed mid-upload) is deleted once
  its newest file is older than ``blobs.incomplete_after_minutes``, which leaves any
  upload in progress alone. Parts of an S3 multipart upload that was never completed are
  not objects and are not listed: the bucket's lifecycle rule
  ``AbortIncompleteMultipartUpload`` removes them (see docs/pages/deploying/distributed.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from bot.distributed.blobs import BlobInfo, BlobStore
from bot.distributed.errors import BlobNotFoundError
from bot.distributed.wire import MANIFEST_NAME, ResultManifest, result_prefix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedCacheLimits:
    max_bytes: int
    """``blobs.cache_max_bytes``; 0: bounded by age only."""
    max_age_seconds: float
    """``pool.cache_max_age_hours``."""
    incomplete_after_seconds: float
    """``blobs.incomplete_after_minutes``."""


@dataclass
class SweepReport:
    """What one sweep found and removed (results, not files)."""

    expired: int = 0
    incomplete: int = 0
    evicted: int = 0
    used_bytes: int = 0
    """What ``results/`` takes after the sweep."""


@dataclass
class _Stored:
    prefix: str
    files: list[BlobInfo] = field(default_factory=list)
    manifest: ResultManifest | None = None

    @property
    def size(self) -> int:
        return sum(blob.size for blob in self.files)


async def sweep_shared_cache(
    blobs: BlobStore, limits: SharedCacheLimits, *, now: float, keep: Collection[str] = ()
) -> SweepReport:
    """Apply the age, incomplete-upload and byte rules (module docstring) to ``results/``;
    ``keep``: cache keys never evicted for bytes by this sweep (just shared)."""
    report = SweepReport()
    stored = _group(await blobs.list_blobs("results/"))
    complete: list[_Stored] = []
    for entry in stored:
        if not any(blob.key == entry.prefix + MANIFEST_NAME for blob in entry.files):
            newest = max(blob.modified for blob in entry.files)
            if now - newest > limits.incomplete_after_seconds:
                logger.warning("removing %s: its manifest was never written", entry.prefix)
                await _delete(blobs, entry)
                report.incomplete += 1
            else:
                report.used_bytes += entry.size  # being written: it counts
            continue
        try:
            entry.manifest = ResultManifest.from_json(
                await blobs.get_bytes(entry.prefix + MANIFEST_NAME)
            )
            expired = entry.manifest.expired(now, limits.max_age_seconds)
        except BlobNotFoundError:  # another worker removed it meanwhile
            continue
        except ValueError:
            logger.warning("removing %s: its manifest is not readable", entry.prefix)
            expired = True
        if expired:
            await _delete(blobs, entry)
            report.expired += 1
        else:
            report.used_bytes += entry.size
            complete.append(entry)
    if limits.max_bytes:
        await _evict(blobs, complete, limits.max_bytes, keep, report)
    return report


async def remove_expired_results(blobs: BlobStore, max_age_seconds: float, *, now: float) -> int:
    """Delete every shared result older than ``max_age_seconds`` (or with an unreadable
    manifest); returns how many were removed."""
    limits = SharedCacheLimits(0, max_age_seconds, incomplete_after_seconds=float("inf"))
    return (await sweep_shared_cache(blobs, limits, now=now)).expired


async def _evict(
    blobs: BlobStore,
    complete: list[_Stored],
    max_bytes: int,
    keep: Collection[str],
    report: SweepReport,
) -> None:
    by_prefix = {entry.prefix: entry for entry in complete}
    kept = {result_prefix(key) for key in keep}
    for prefix in list(kept):
        manifest = by_prefix[prefix].manifest if prefix in by_prefix else None
        if manifest is not None and manifest.render_of:
            kept.add(result_prefix(manifest.render_of))  # never a render's own song

    def order(entry: _Stored) -> tuple[int, float]:
        assert entry.manifest is not None
        return (0 if entry.manifest.render_of else 1, entry.manifest.created_at)

    for entry in sorted(complete, key=order):
        if report.used_bytes <= max_bytes:
            return
        if entry.prefix in kept:
            continue
        await _delete(blobs, entry)
        report.evicted += 1
        report.used_bytes -= entry.size
    if report.used_bytes > max_bytes:
        logger.warning(
            "the shared cache takes %d bytes, over blobs.cache_max_bytes (%d): only the "
            "results just shared are left", report.used_bytes, max_bytes,
        )  # fmt: skip


def _group(blobs: list[BlobInfo]) -> list[_Stored]:
    """The listing by result folder (``results/<key>/``); stray keys are ignored."""
    groups: dict[str, _Stored] = {}
    for blob in blobs:
        parts = blob.key.split("/")
        if len(parts) < 3:
            continue
        prefix = f"{parts[0]}/{parts[1]}/"
        groups.setdefault(prefix, _Stored(prefix)).files.append(blob)
    return list(groups.values())


async def _delete(blobs: BlobStore, entry: _Stored) -> None:
    with contextlib.suppress(BlobNotFoundError):
        await blobs.delete_prefix(entry.prefix)
