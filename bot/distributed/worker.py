"""``karaoke-bot worker``: takes songs from the queue and separates them on this host's GPUs.

A worker is today's pool behind a procrastinate worker. It takes up to
``queue.worker_concurrency`` songs at once and gives them all to one pool, so their
segments share forward passes exactly as they do on a single host. For each song it
downloads the upload from the blob store, runs the pool, uploads the files and the song's
lossless stems to the shared result cache (the manifest last, so a reader never sees half
a result), records the outcome in the run ledger and tells the front-ends through
PostgreSQL's NOTIFY. It also runs the karaoke controls' render jobs
(``bot.distributed.rendering``), and keeps the shared cache within its age and byte
bounds (``bot.distributed.retention``).

A worker that dies mid-song stops sending heartbeats; every worker sweeps the queue for
songs of silent workers with procrastinate's stalled-job API and puts them back, at most
``queue.max_attempts`` times. A worker that was only cut off and finishes later finds its
attempt superseded in the ledger: its outcome is rejected, and it waits for the current
attempt instead of marking the queue row (see ``bot.distributed.runs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import procrastinate
from procrastinate.connector import BaseConnector
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager

from bot.distributed.blobs import BlobStore
from bot.distributed.errors import BlobNotFoundError, BlobStoreError
from bot.distributed.queue import fetch_all
from bot.distributed.rendering import SharedRenderer, stems_of
from bot.distributed.retention import SharedCacheLimits, sweep_shared_cache
from bot.distributed.runs import RunLedger
from bot.distributed.shared_cache import publish_result, read_manifest, upload_stems
from bot.distributed.wire import (
    MANIFEST_NAME,
    RENDER_TASK_NAME,
    TASK_NAME,
    Outcome,
    ResultManifest,
    error_to_dict,
    outcome_notice,
    progress_channel,
    progress_message,
    render_from_payload,
    request_from_payload,
    result_prefix,
)
from bot.settings import QueueSettings
from separation.cache.results import file_sha256
from separation.errors import WorkerLostError
from separation.jobs import JobHandle, JobResult, SeparationRequest
from separation.pool import SeparationPool
from separation.rendering.controls import STEM_SUFFIX
from separation.workdir import JobFolder, sweep_abandoned

logger = logging.getLogger(__name__)

_NOTIFY = "SELECT pg_notify(%(channel)s, %(payload)s)"
_POLL_SECONDS = 2.0


def worker_name() -> str:
    """Unique per process and readable in logs: host, pid and a short random suffix."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _CurrentAttemptJobManager(JobManager):
    """procrastinate's job manager, except that a superseded attempt leaves the queue row
    alone: the row belongs to the attempt that replaced it, which finishes (and deletes)
    it. Finishing it from the stale attempt would fail ("Job was not found or not in
    'doing' or 'todo' status") in a task nobody awaits, logged as an asyncio ERROR, or,
    worse, close the row under the current attempt before that one is done with it."""

    def __init__(self, connector: BaseConnector, superseded: set[int]) -> None:
        super().__init__(connector)
        self._superseded = superseded

    async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
        if job.id in self._superseded:
            self._superseded.discard(job.id)
            logger.debug("queue job %s: left to the attempt that superseded this one", job.id)
            return
        await super().finish_job(job, status, delete_job)


class SeparationWorker:
    """One worker process: a started pool, a procrastinate worker and the stalled sweep."""

    def __init__(
        self,
        *,
        app: procrastinate.App,
        pool: SeparationPool,
        blobs: BlobStore,
        queue: QueueSettings,
        tmp_dir: Path,
        shared_cache: SharedCacheLimits,
        name: str | None = None,
    ) -> None:
        """``shared_cache``: the bounds this worker keeps the blob store's results within
        (``bot.distributed.retention``), after each result it shares and periodically."""
        self._app = app
        self._pool = pool
        self._blobs = blobs
        self._queue = queue
        self._ledger = RunLedger(app.connector)
        self._inputs = tmp_dir / "worker-inputs"
        self.name = name or worker_name()
        self._channel = progress_channel(queue.name)
        self._max_age_seconds = pool.config.cache.max_age_seconds
        self._shared_cache = shared_cache
        self._renders = SharedRenderer(pool, blobs, max_age_seconds=self._max_age_seconds)
        self._superseded: set[int] = set()
        """Queue jobs whose attempt here was superseded (their row is not ours to end)."""
        app.job_manager = _CurrentAttemptJobManager(app.connector, self._superseded)
        app.task(name=TASK_NAME, queue=queue.name, pass_context=True)(self._separate)
        app.task(name=RENDER_TASK_NAME, queue=queue.name, pass_context=True)(self._render)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then finish the songs in hand and return."""
        self._inputs.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Each song's copy of its upload is in a folder its worker owns (a lock): one a
        # killed worker left is removed here, one another live worker uses is not.
        await asyncio.to_thread(sweep_abandoned, self._inputs, "")
        sweeper = asyncio.create_task(self._sweep_stalled(), name="stalled-sweep")
        retention = asyncio.create_task(self._sweep_results(), name="result-retention")
        worker = asyncio.create_task(
            self._app.run_worker_async(
                queues=[self._queue.name],
                name=self.name,
                concurrency=self._queue.worker_concurrency,
                update_heartbeat_interval=self._queue.heartbeat_seconds,
                stalled_worker_timeout=self._queue.stalled_after_seconds,
                install_signal_handlers=False,
                listen_notify=True,
                delete_jobs="successful",
                # A safety net only: new and retried songs wake workers at once.
                fetch_job_polling_interval=_POLL_SECONDS,
            ),
            name="procrastinate-worker",
        )
        logger.info("worker %s: taking songs from queue %r", self.name, self._queue.name)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
        sweeper.cancel()
        retention.cancel()
        worker.cancel()  # procrastinate finishes the jobs in hand, then returns
        await asyncio.gather(worker, sweeper, retention, return_exceptions=True)
        stopping.cancel()
        if worker.done() and not worker.cancelled() and worker.exception() is not None:
            raise worker.exception()  # type: ignore[misc]
        logger.info("worker %s: stopped", self.name)

    # -- one song ---------------------------------------------------------------------------
    async def _separate(self, context: JobContext, /, **payload: Any) -> None:
        queue_job_id = context.job.id
        assert queue_job_id is not None
        job_id = str(payload["job_id"])
        attempt = await self._ledger.start_attempt(queue_job_id, job_id, self.name)
        if attempt is None:
            logger.info("job %s: an earlier attempt already finished it", job_id)
            return
        if attempt > self._queue.max_attempts:
            lost = WorkerLostError(attempts=attempt - 1)
            logger.warning("job %s: %s; giving up", job_id, lost)
            await self._finish(
                queue_job_id, job_id, attempt, Outcome("failed", error=error_to_dict(lost))
            )
            return
        logger.info("job %s: attempt %d on %s", job_id, attempt, self.name)
        outcome = await self._attempt(context, job_id, attempt, payload)
        await self._finish(queue_job_id, job_id, attempt, outcome)

    async def _render(self, context: JobContext, /, **payload: Any) -> None:
        """A karaoke-control render (``bot.distributed.rendering``): one attempt; a
        worker that dies mid-render leaves it to the stalled sweep like a song."""
        queue_job_id = context.job.id
        assert queue_job_id is not None
        job_id = str(payload["job_id"])
        attempt = await self._ledger.start_attempt(queue_job_id, job_id, self.name)
        if attempt is None:
            return
        if attempt > self._queue.max_attempts:
            lost = WorkerLostError(attempts=attempt - 1)
            await self._finish(
                queue_job_id, job_id, attempt, Outcome("failed", error=error_to_dict(lost))
            )
            return
        try:
            outcome = await self._renders.run(render_from_payload(payload))
        except asyncio.CancelledError:
            if context.abort_reason() is AbortReason.USER_REQUEST:
                outcome = Outcome("cancelled")
            else:
                raise
        except Exception as error:
            logger.info("render %s failed: %s", job_id, error)
            outcome = Outcome("failed", error=error_to_dict(error))
        await self._finish(queue_job_id, job_id, attempt, outcome)

    async def _attempt(
        self, context: JobContext, job_id: str, attempt: int, payload: dict[str, Any]
    ) -> Outcome:
        folder = await asyncio.to_thread(JobFolder.create, self._inputs, f"{job_id}-{attempt}-")
        handle: JobHandle | None = None
        try:
            input_path = folder.path / "input.upload"
            await self._blobs.get_file(str(payload["input_key"]), input_path)
            request = await self._verified(request_from_payload(payload, input_path))
            key = self._pool.result_key(request, request.input_sha256 or "")
            if await self._shared_result_ready(key):
                logger.info("job %s: served from the shared result cache", job_id)
                return Outcome("done", cache_key=key, cache_hit=True)
            handle = await self._pool.submit(request)
            async for event in handle.events():
                if (message := progress_message(job_id, attempt, event)) is not None:
                    await self._notify(message)
            result = await handle.result()
            try:
                await self._publish(result)
            finally:
                result.release()
            return Outcome("done", cache_key=result.cache_key, cache_hit=result.cache_hit)
        except asyncio.CancelledError:
            if handle is not None:
                await asyncio.shield(handle.cancel())
            if context.abort_reason() is AbortReason.USER_REQUEST:
                return Outcome("cancelled")  # a front-end cancelled the song
            raise  # this worker is stopping: the song stays for another attempt
        except BlobNotFoundError as error:
            logger.warning("job %s: its upload is gone from the blob store: %s", job_id, error)
            return Outcome("failed", error=error_to_dict(error))
        except Exception as error:
            logger.info("job %s failed: %s", job_id, error)
            return Outcome("failed", error=error_to_dict(error))
        finally:
            await asyncio.to_thread(folder.remove)

    async def _verified(self, request: SeparationRequest) -> SeparationRequest:
        """``request`` with the SHA-256 of the upload as it arrived here, checked against
        the one the front-end took as it saved it.

        The worker hashes the transfer instead of trusting the wire: the blob store
        checks a download's length, not its content, and the digest names the result in
        the cache every front-end and worker shares, so a corrupted or wrong transfer
        would be separated and served to everyone sending that song. This is the one
        hash on a worker; the pool reuses it.

        Raises:
            BlobStoreError: the upload arrived with other content than was sent.
        """
        digest = await asyncio.to_thread(file_sha256, request.input_path)
        if request.input_sha256 is not None and digest != request.input_sha256:
            raise BlobStoreError(
                store=self._blobs.describe(),
                reason=f"the upload arrived as sha256 {digest[:12]}..., "
                f"not {request.input_sha256[:12]}... as sent",
                key=request.job_id,
            )
        return dataclasses.replace(request, input_sha256=digest)

    async def _shared_result_ready(self, key: str) -> bool:
        """A fresh result for ``key`` is in the shared cache (its manifest and every file
        it names; the front-end verifies the contents when it downloads them)."""
        prefix = result_prefix(key)
        try:
            manifest = ResultManifest.from_json(await self._blobs.get_bytes(prefix + MANIFEST_NAME))
        except (BlobNotFoundError, ValueError):
            return False
        if manifest.expired(time.time(), self._max_age_seconds):
            return False
        return all([await self._blobs.exists(output.key) for output in manifest.outputs])

    async def _publish(self, result: JobResult) -> None:
        """Put the result in the shared cache unless a valid copy is already there, with
        the song's lossless stems, which front-ends render the karaoke controls from."""
        with contextlib.suppress(BlobNotFoundError, ValueError):
            existing = await read_manifest(self._blobs, result.cache_key)
            fresh = not existing.expired(time.time(), self._max_age_seconds)
            if fresh and [o.name for o in existing.outputs] == list(result.outputs):
                return
        entry = await self._pool.stored_entry(result.cache_key)
        try:
            stems, scale = stems_of(entry)
            stem_files = await upload_stems(
                self._blobs, result.cache_key, stems, suffix=STEM_SUFFIX
            )
            await publish_result(self._blobs, result, stems=stem_files, stems_scale=scale)
        finally:
            if entry is not None and entry.pin is not None:
                entry.pin.release()

    async def _finish(self, queue_job_id: int, job_id: str, attempt: int, outcome: Outcome) -> None:
        """Record the outcome if this attempt is still the current one; else wait for the
        current attempt, so that this (stale) worker leaves the queue row alone."""
        if await self._ledger.record_outcome(queue_job_id, attempt, outcome.to_dict()):
            logger.info("job %s: attempt %d ended: %s", job_id, attempt, outcome.status)
            await self._notify(outcome_notice(job_id, attempt))
            if outcome.status == "done" and not outcome.cache_hit:  # a new shared result
                await self._bound_shared_cache(keep=outcome.cache_key)
            return
        self._superseded.add(queue_job_id)
        logger.warning(
            "job %s: attempt %d was superseded (this worker was presumed dead); its %s is "
            "discarded",
            job_id, attempt, outcome.status,
        )  # fmt: skip
        deadline = time.monotonic() + self._pool.config.job_timeout_seconds
        while time.monotonic() < deadline:
            state = (await self._ledger.states([queue_job_id])).get(queue_job_id)
            if state is None or state.outcome is not None:
                return
            await asyncio.sleep(1.0)

    async def _wake_workers(self, queue_job_id: int | None) -> None:
        """procrastinate wakes idle workers when a job is inserted, not when one is put
        back: say it on its channel, so a retried song starts at once, not at the next
        poll (measured: 4 s of the 9 s failover before this)."""
        notice = json.dumps({"type": "job_inserted", "job_id": queue_job_id})
        try:
            await fetch_all(
                self._app, _NOTIFY, channel=f"procrastinate_queue_v1#{self._queue.name}",
                payload=notice,
            )  # fmt: skip
        except Exception as error:  # the next poll finds it anyway
            logger.debug("waking workers failed: %s", error)

    async def _notify(self, payload: str) -> None:
        try:
            await fetch_all(self._app, _NOTIFY, channel=self._channel, payload=payload)
        except Exception as error:  # progress is best effort; the ledger is the truth
            logger.debug("progress notify failed: %s", error)

    # -- the shared cache's bounds ----------------------------------------------------------
    async def _sweep_results(self) -> None:
        interval = min(
            600.0, self._max_age_seconds / 4, self._shared_cache.incomplete_after_seconds
        )
        while True:
            await self._bound_shared_cache()
            await asyncio.sleep(interval)

    async def _bound_shared_cache(self, keep: str | None = None) -> None:
        """Apply the shared cache's age and byte bounds (``keep``: a result just shared)."""
        try:
            report = await sweep_shared_cache(
                self._blobs, self._shared_cache, now=time.time(), keep=[keep] if keep else ()
            )
        except Exception as error:
            logger.warning("shared result retention failed: %s", error)
            return
        if report.expired or report.incomplete or report.evicted:
            logger.info(
                "shared results: %d past their age, %d never finished, %d evicted for "
                "space removed; %d bytes in use",
                report.expired, report.incomplete, report.evicted, report.used_bytes,
            )  # fmt: skip

    # -- songs of dead workers --------------------------------------------------------------
    async def _sweep_stalled(self) -> None:
        manager = self._app.job_manager
        while True:
            await asyncio.sleep(self._queue.sweep_interval_seconds)
            try:
                stalled = [
                    job
                    for task in (TASK_NAME, RENDER_TASK_NAME)
                    for job in await manager.get_stalled_jobs(
                        queue=self._queue.name,
                        task_name=task,
                        seconds_since_heartbeat=self._queue.stalled_after_seconds,
                    )
                ]
                for job in stalled:
                    try:
                        await manager.retry_job(job)
                    except Exception as error:  # another worker retried it first
                        logger.debug("job %s: retry skipped: %s", job.id, error)
                        continue
                    logger.warning(
                        "queue job %s: its worker stopped answering; back in the queue", job.id
                    )
                    await self._wake_workers(job.id)
            except Exception as error:
                logger.warning("stalled-job sweep failed: %s", error)
