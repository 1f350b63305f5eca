"""A front-end's side of the karaoke controls: queue a render, fetch it from the blob store.

Workers render (``bot.distributed.rendering`` says why); a front-end only decides whether
a press needs a render at all, and then follows one job until its outcome is in the run
ledger. A render already in the shared cache is downloaded (verified) at once and costs
nothing, so the chat flow can tell a free press from one to charge, as on one host.

A press is refused before anything is queued when the song's stems are gone from the
shared cache (``StemsExpiredError``) or when ``pool.max_queued_renders`` renders are
already queued or running fleet-wide (``RendersBusyError``): a storm of presses cannot
build a backlog behind the songs. Render jobs have the lowest priority in the queue, so
songs waiting for a worker are always taken first; a song's own controls
(``/karaoke key:-2``, ``Lane.FIRST_RESULT``) are part of its first result and go in line
like a song, never refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import procrastinate

from bot.distributed.blobs import BlobStore
from bot.distributed.errors import BlobNotFoundError
from bot.distributed.queue import fetch_all
from bot.distributed.runs import RunLedger
from bot.distributed.shared_cache import download_verified, read_manifest
from bot.distributed.wire import (
    RENDER_TASK_NAME,
    Outcome,
    ResultManifest,
    error_from_dict,
    render_to_payload,
)
from separation.cache.render_keys import render_key
from separation.cpu_budget import Lane
from separation.errors import JobFailedError, RendersBusyError, StemsExpiredError
from separation.jobs import JobResult, RenderRequest

logger = logging.getLogger(__name__)

AFTER_THE_FACT_PRIORITY = -1_000_000
"""Below any song's priority (a user's n-th waiting song has -n): songs go first."""
_RENDERS_ACTIVE = """
SELECT count(*) AS active FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status IN ('todo', 'doing')
   AND priority = %(priority)s
"""
_STATUS = "SELECT status FROM procrastinate_jobs WHERE id = %(id)s"


@dataclass
class _Download:
    """A render copied next to the bot; :meth:`release` deletes the copy."""

    folder: Path

    def release(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class RenderLimits:
    max_queued: int
    """``pool.max_queued_renders``, fleet-wide (extras only)."""
    max_age_seconds: float
    """``pool.cache_max_age_hours``: an older shared render is made again."""
    timeout_seconds: float
    """``pool.job_timeout_seconds``: a render not done by then fails."""
    retry_after_seconds: float = 10.0
    """What "busy" tells users (a render takes seconds)."""
    poll_seconds: float = 0.05


class RenderRequests:
    """Renders through the queue, results from the shared cache."""

    def __init__(
        self,
        *,
        app: procrastinate.App,
        blobs: BlobStore,
        queue_name: str,
        limits: RenderLimits,
        downloads: Path,
    ) -> None:
        self._app = app
        self._blobs = blobs
        self._queue_name = queue_name
        self._limits = limits
        self._downloads = downloads
        self._ledger = RunLedger(app.connector)

    async def cached(self, request: RenderRequest) -> JobResult | None:
        """The render if some worker made it before (downloaded, verified), else None."""
        key = render_key(request)
        try:
            manifest = await read_manifest(self._blobs, key)
        except (BlobNotFoundError, ValueError):
            return None
        if manifest.expired(time.time(), self._limits.max_age_seconds):
            return None
        return await self._download(manifest, cache_hit=True)

    async def render(self, request: RenderRequest) -> JobResult:
        """The render, made by a worker if nobody made it before.

        Raises:
            StemsExpiredError: the song's stems are no longer in the shared cache.
            RendersBusyError: too many renders queued fleet-wide (extras only).
            OutputTooLargeError, AudioExportError, JobFailedError: as the worker failed.
        """
        cached = await self.cached(request)
        if cached is not None:
            return cached
        await self._check_stems(request.cache_key)
        priority = 0 if request.lane is Lane.FIRST_RESULT else AFTER_THE_FACT_PRIORITY
        if priority == AFTER_THE_FACT_PRIORITY:
            rows = await fetch_all(
                self._app, _RENDERS_ACTIVE,
                queue=self._queue_name, task=RENDER_TASK_NAME, priority=priority,
            )  # fmt: skip
            if int(rows[0]["active"]) >= self._limits.max_queued:
                raise RendersBusyError(retry_after_seconds=self._limits.retry_after_seconds)
        job_id = f"render-{uuid.uuid4().hex}"
        deferrer = self._app.configure_task(
            name=RENDER_TASK_NAME, queue=self._queue_name, priority=priority
        )
        queue_job_id = await deferrer.defer_async(**render_to_payload(request, job_id=job_id))
        await self._ledger.register(queue_job_id, job_id)
        try:
            outcome = await self._outcome(queue_job_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._app.job_manager.cancel_job_by_id_async(queue_job_id, abort=True)
            raise
        finally:
            with contextlib.suppress(Exception):
                await self._ledger.forget(queue_job_id)
        if outcome.status == "failed":
            raise error_from_dict(outcome.error or {})
        if outcome.status != "done" or outcome.cache_key is None:
            raise JobFailedError(f"render ended as {outcome.status}")
        try:
            manifest = await read_manifest(self._blobs, outcome.cache_key)
        except (BlobNotFoundError, ValueError) as error:
            raise JobFailedError(f"the render is gone from the shared cache: {error}") from None
        result = await self._download(manifest, cache_hit=False)
        if result is None:
            raise JobFailedError("the render arrived damaged")
        return result

    async def _check_stems(self, song_key: str) -> None:
        try:
            manifest = await read_manifest(self._blobs, song_key)
        except (BlobNotFoundError, ValueError) as error:
            raise StemsExpiredError(song_key) from error
        if not manifest.stems or manifest.expired(time.time(), self._limits.max_age_seconds):
            raise StemsExpiredError(song_key)

    async def _outcome(self, queue_job_id: int) -> Outcome:
        """Wait for the render job's outcome in the ledger (renders take seconds: the
        ledger is polled briefly rather than followed through NOTIFY)."""
        deadline = time.monotonic() + self._limits.timeout_seconds
        while time.monotonic() < deadline:
            state = (await self._ledger.states([queue_job_id])).get(queue_job_id)
            if state is not None and state.outcome is not None:
                return Outcome.from_dict(state.outcome)
            rows = await fetch_all(self._app, _STATUS, id=queue_job_id)
            status = str(rows[0]["status"]) if rows else None
            if status in ("failed", "aborted", "cancelled") or (status is None and state is None):
                raise JobFailedError(f"render job ended as {status}")
            await asyncio.sleep(self._limits.poll_seconds)
        raise JobFailedError("the render took too long")

    async def _download(self, manifest: ResultManifest, *, cache_hit: bool) -> JobResult | None:
        """The render's files next to the bot, verified; None if gone or damaged."""
        folder = self._downloads / f"render-{uuid.uuid4().hex[:12]}"
        folder.mkdir(mode=0o700, parents=True)
        try:
            outputs = await download_verified(self._blobs, manifest.outputs, folder)
        except (BlobNotFoundError, ValueError) as error:
            logger.warning("render %s unusable: %s", manifest.cache_key[:12], error)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JobResult(
            outputs=outputs,
            duration_seconds=manifest.duration_seconds,
            cache_hit=cache_hit,
            bitrate_kbps=manifest.bitrate_kbps,
            cache_key=manifest.cache_key,
            input_tags=dict(manifest.input_tags),
            tag_lyrics=manifest.tag_lyrics,
            lyrics_timing=manifest.lyrics_timing,
            pin=_Download(folder),
        )
