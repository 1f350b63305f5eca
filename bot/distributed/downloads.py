"""A song's result copied next to the bot and verified before anyone sees it.

Every file is checked against the result's manifest (size and SHA-256); a damaged,
missing or expired result is removed from the shared cache, so the song is computed
again instead of served broken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.distributed.blobs import BlobStore
from bot.distributed.errors import BlobNotFoundError
from bot.distributed.shared_cache import download_verified
from bot.distributed.wire import MANIFEST_NAME, Outcome, ResultManifest, result_prefix
from separation.jobs import JobResult
from separation.workdir import JobFolder

logger = logging.getLogger(__name__)


@dataclass
class Download:
    """A result copied next to the bot; :meth:`release` deletes it and the job's blobs."""

    folder: JobFolder
    """Owned (locked) while in use: one a killed front-end left is swept at the next start."""
    cleanup: Callable[[], None] = field(repr=False)
    """Deletes the job's upload and ledger row (not the shared result)."""

    def release(self) -> None:
        """Delete the copy, then the job's upload and ledger row."""
        self.folder.remove()
        self.cleanup()


async def download_result(
    blobs: BlobStore,
    downloads: Path,
    job_id: str,
    outcome: Outcome,
    *,
    max_age_seconds: float,
    cleanup: Callable[[], None],
) -> JobResult | None:
    """The result's files next to the bot, verified; None when the cached copy is
    damaged or gone (it is removed, so the next attempt recomputes it)."""
    assert outcome.cache_key is not None
    prefix = result_prefix(outcome.cache_key)
    workdir = await asyncio.to_thread(JobFolder.create, downloads, f"{job_id}-")
    folder = workdir.path
    try:
        manifest = ResultManifest.from_json(await blobs.get_bytes(prefix + MANIFEST_NAME))
        if manifest.expired(time.time(), max_age_seconds):
            raise ValueError("past pool.cache_max_age_hours")
        outputs = await download_verified(blobs, manifest.outputs, folder)
    except (BlobNotFoundError, ValueError) as error:
        logger.warning("job %s: cached result unusable (%s); computing it again", job_id, error)
        workdir.remove()
        await blobs.delete_prefix(prefix)
        return None
    except BaseException:
        workdir.remove()
        raise
    return JobResult(
        outputs=outputs,
        duration_seconds=manifest.duration_seconds,
        cache_hit=outcome.cache_hit,
        bitrate_kbps=manifest.bitrate_kbps,
        cache_key=manifest.cache_key,
        input_tags=dict(manifest.input_tags),
        tag_lyrics=manifest.tag_lyrics,
        lyrics_timing=manifest.lyrics_timing,
        pin=Download(workdir, cleanup),
    )
