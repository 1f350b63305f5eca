"""The shared result cache keeps users' music no longer than ``pool.cache_max_age_hours``.

On one host the pool's cache deletes old entries itself; results in the blob store are
deleted here, by every worker in turn (deleting twice is harmless). A result's age is
the ``created_at`` of its manifest, written last; files of a result whose manifest was
never written (a worker killed mid-upload) are overwritten by the next attempt.
"""

from __future__ import annotations

import contextlib
import logging

from bot.distributed.wire import MANIFEST_NAME, ResultManifest
from storage.blobs import BlobStore
from storage.errors import BlobNotFoundError

logger = logging.getLogger(__name__)


async def remove_expired_results(blobs: BlobStore, max_age_seconds: float, *, now: float) -> int:
    """Delete every shared result older than ``max_age_seconds`` (or with an unreadable
    manifest); returns how many were removed."""
    removed = 0
    for key in await blobs.list_keys("results/"):
        if not key.endswith("/" + MANIFEST_NAME):
            continue
        prefix = key[: -len(MANIFEST_NAME)]
        with contextlib.suppress(BlobNotFoundError):  # another worker was faster
            try:
                manifest = ResultManifest.from_json(await blobs.get_bytes(key))
                expired = manifest.expired(now, max_age_seconds)
            except ValueError:
                logger.warning("removing %s: its manifest is not readable", prefix)
                expired = True
            if expired:
                await blobs.delete_prefix(prefix)
                removed += 1
    return removed
