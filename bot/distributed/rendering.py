"""Karaoke controls on the fleet: a worker renders from the song's stems in the blob store.

A render (key, tempo, guide vocal) is seconds of ffmpeg on the song's lossless stems,
never the model. Workers upload those stems with every song (``bot.distributed.worker``);
a press on a front-end queues a render job (``karaoke.render``) that a worker runs with
its pool's own ``Renderer``, from the stems it still has or copies back from the blob
store, and shares the result under its render key. Why a worker and not the front-end:

- Front-ends are small CPU hosts that never load torch (``tests/distributed``); the
  render code is the pool's, and workers are the hosts built for audio work. Their CPUs
  are mostly idle while the GPU runs forward passes, and the pool's ``CpuBudget`` already
  shares them between songs and renders.
- Fairness is the fleet's: a render job has the lowest priority in the queue, so a
  waiting song is always taken first, and inside the worker it runs in the budget's
  after-the-fact lane, pausing for the songs' ffmpeg (issue 20). A song's own controls
  (``/karaoke key:-2``) go in line like a song. ``pool.max_queued_renders`` bounds the
  renders queued fleet-wide (checked by the front-end) and on each worker.
- Latency: the queue adds a round trip (tens of milliseconds, the workers listen for new
  jobs) and a worker that separated the song has its stems at hand; a render shared in
  the blob store is served to every front-end without running again.

A render job uses the run ledger like a song, so its outcome (or its typed error:
``StemsExpiredError``, ``RendersBusyError``) reaches the front-end that asked.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from bot.distributed.blobs import BlobStore
from bot.distributed.errors import BlobNotFoundError
from bot.distributed.shared_cache import (
    download_verified,
    publish_result,
    read_manifest,
)
from bot.distributed.wire import Outcome, ResultManifest
from separation.cache.extras import TAG_LYRICS
from separation.cache.render_keys import render_key
from separation.cache.results import CacheEntry
from separation.errors import StemsExpiredError
from separation.jobs import JobResult, RenderRequest
from separation.pool import SeparationPool

logger = logging.getLogger(__name__)


class SharedRenderer:
    """A worker's renders: stems from the shared cache in, renders to the shared cache."""

    def __init__(self, pool: SeparationPool, blobs: BlobStore, *, max_age_seconds: float) -> None:
        self._pool = pool
        self._blobs = blobs
        self._max_age_seconds = max_age_seconds

    async def run(self, request: RenderRequest) -> Outcome:
        """Render ``request`` into the shared cache (unless it is there already).

        Raises:
            StemsExpiredError: neither this worker nor the shared cache has the stems.
            RendersBusyError, OutputTooLargeError, AudioExportError: as the pool raises.
        """
        key = render_key(request)
        if await self._fresh(key) is not None:
            return Outcome("done", cache_key=key, cache_hit=True)
        await self._bring_stems(request.cache_key)
        result = await self._pool.render(request)
        try:
            await self._publish(request, result)
        finally:
            result.release()
        return Outcome("done", cache_key=key, cache_hit=result.cache_hit)

    async def _fresh(self, key: str) -> ResultManifest | None:
        with contextlib.suppress(BlobNotFoundError, ValueError):
            manifest = await read_manifest(self._blobs, key)
            if not manifest.expired(time.time(), self._max_age_seconds):
                return manifest
        return None

    async def _bring_stems(self, song_key: str) -> None:
        """The song's stems in this worker's cache: kept since it separated the song, or
        copied back (verified) from the shared cache."""
        entry = await self._pool.stored_entry(song_key)
        if entry is not None:
            if entry.pin is not None:
                entry.pin.release()
            if entry.stems:
                return
        manifest = await self._fresh(song_key)
        if manifest is None or not manifest.stems:
            raise StemsExpiredError(song_key)

        async def fill(folder: Path) -> tuple[dict[str, Path], dict[str, Path], dict[str, Any]]:
            try:
                outputs = await download_verified(self._blobs, manifest.outputs, folder)
                stems = await download_verified(self._blobs, manifest.stems, folder)
            except (BlobNotFoundError, ValueError) as error:
                logger.warning("stems of %s unusable: %s", song_key[:12], error)
                raise StemsExpiredError(song_key) from error
            metadata = {
                "duration_seconds": manifest.duration_seconds,
                "bitrate_kbps": manifest.bitrate_kbps,
                "input_tags": manifest.input_tags,
                "stems_scale": manifest.stems_scale,
                TAG_LYRICS: manifest.tag_lyrics,
            }
            return outputs, stems, metadata

        await self._pool.adopt_entry(song_key, fill)
        logger.info("copied the stems of %s from the shared cache", song_key[:12])

    async def _publish(self, request: RenderRequest, result: JobResult) -> None:
        """Upload a new render to the shared cache, the manifest last."""
        await publish_result(self._blobs, result, render_of=request.cache_key)


def stems_of(entry: CacheEntry | None) -> tuple[dict[str, Path], float]:
    """A cache entry's stems and the scale they were stored at (none for no entry)."""
    if entry is None:
        return {}, 1.0
    return dict(entry.stems), float(entry.metadata.get("stems_scale") or 1.0)
