"""The distributed backend as a front-end sees it: ``SeparationBackend`` over the queue.

``submit`` uploads the song to the blob store and defers a queue job; the handle it
returns is fed from two sources. Progress (queue position, decoded length, percent) comes
from the workers' NOTIFY messages and from the queue table, and may be lost without harm.
The outcome comes from the run ledger, which this front-end polls while it has jobs in
flight (and reads at once when a NOTIFY says an outcome is in): a notification missed
during a reconnect, or a front-end restarted mid-job, still ends with the right result.

A result is downloaded next to the bot and checked against its manifest (size and
SHA-256 of every file) before anyone sees it; a damaged or missing file removes the
cached result and queues the song again, so a corrupt blob is recomputed, never served.

Karaoke controls go through the queue too, as render jobs a worker runs from the song's
shared stems (``bot.distributed.render_requests``).

Admission (the queue limit, the per-user limit, round-robin priorities) is decided under
a PostgreSQL advisory lock held across the count and the insert, so two front-ends
cannot both let in the song that fills the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

from bot.distributed.blobs import BlobStore
from bot.distributed.errors import BlobNotFoundError
from bot.distributed.queue import fetch_all
from bot.distributed.render_requests import RenderLimits, RenderRequests
from bot.distributed.runs import RunLedger, RunState
from bot.distributed.shared_cache import download_verified
from bot.distributed.wire import (
    MANIFEST_NAME,
    TASK_NAME,
    Outcome,
    ResultManifest,
    error_from_dict,
    input_key,
    progress_channel,
    read_progress_message,
    request_to_payload,
    result_prefix,
)
from bot.settings import QueueSettings
from separation.cache.results import file_sha256
from separation.errors import (
    JobFailedError,
    PoolBusyError,
    PoolShutdownError,
    UserJobLimitError,
)
from separation.jobs import (
    Attempt,
    Cancelled,
    Done,
    Failed,
    JobHandle,
    JobResult,
    Queued,
    RenderRequest,
    Running,
    SeparationRequest,
)
from separation.workdir import JobFolder, sweep_abandoned

logger = logging.getLogger(__name__)

_CAPACITY_SAMPLE_SECONDS = 10.0
_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'todo') AS queued,
       count(*) FILTER (WHERE args->>'user_ref' = %(user_ref)s) AS user_active
  FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status IN ('todo', 'doing')
"""
_STATUSES = "SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%(ids)s)"
_WAITING = """
SELECT id FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status = 'todo'
 ORDER BY priority DESC, id ASC
"""
_BY_STATE = """
SELECT status::text AS state, count(*) AS jobs FROM procrastinate_jobs
 WHERE queue_name = %(queue)s GROUP BY status
"""
_WORKERS_ALIVE = """
SELECT count(*) AS alive FROM procrastinate_workers
 WHERE last_heartbeat > now() - make_interval(secs => %(seconds)s)
"""


@dataclass(frozen=True)
class FrontendLimits:
    """The fleet-wide admission limits (the pool's settings, applied across front-ends)."""

    max_queued_jobs: int
    max_jobs_per_user: int
    retry_after_seconds: float = 300.0
    """What "busy" tells users when the queue is full (no fleet-wide speed estimate yet)."""
    poll_interval_seconds: float = 1.0
    result_max_age_seconds: float = 24 * 3600.0
    """``pool.cache_max_age_hours``: an older shared result is computed again, not served."""
    max_queued_renders: int = 10
    """``pool.max_queued_renders``: karaoke-control renders queued or running, fleet-wide."""
    render_timeout_seconds: float = 1800.0
    """``pool.job_timeout_seconds``: a render not done by then fails."""


@dataclass
class _InFlight:
    handle: JobHandle
    queue_job_id: int
    checked_at: float = 0.0
    resolving: bool = False
    requeues: int = 0
    attempt_seen: int = 0
    fraction: float = 0.0
    """The current attempt's progress as last shown (it never goes back)."""
    running_since: float | None = None


@dataclass
class _Download:
    """A result copied next to the bot; :meth:`release` deletes it and the job's blobs."""

    folder: JobFolder
    """Owned (locked) while in use: one a killed front-end left is swept at the next start."""
    cleanup: Callable[[], None] = field(repr=False)
    """Deletes the job's upload and ledger row (not the shared result)."""

    def release(self) -> None:
        self.folder.remove()
        self.cleanup()


class DistributedBackend:
    """A ``SeparationBackend`` whose songs run on ``karaoke-bot worker`` processes."""

    def __init__(
        self,
        *,
        app: procrastinate.App,
        conninfo: str,
        blobs: BlobStore,
        queue: QueueSettings,
        limits: FrontendLimits,
        tmp_dir: Path,
    ) -> None:
        self._app = app
        self._conninfo = conninfo
        self._blobs = blobs
        self._queue = queue
        self._limits = limits
        self._downloads = tmp_dir / "deliveries"
        self._ledger = RunLedger(app.connector)
        self._renders = RenderRequests(
            app=app,
            blobs=blobs,
            queue_name=queue.name,
            limits=RenderLimits(
                max_queued=limits.max_queued_renders,
                max_age_seconds=limits.result_max_age_seconds,
                timeout_seconds=limits.render_timeout_seconds,
            ),
            downloads=self._downloads,
        )
        self._in_flight: dict[str, _InFlight] = {}
        self._admission = asyncio.Lock()
        self._admission_connection: psycopg.AsyncConnection[Any] | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanups: set[asyncio.Task[None]] = set()
        self._queued = 0
        self._closing = False
        self._app_context: Any = None
        self.requeued_corrupt = 0
        self._seconds_per_song: float | None = None
        self._capacity = 0
        """Songs the live workers take at once (workers x concurrency), sampled."""
        self._capacity_checked = 0.0
        self.on_retry: Callable[[], None] | None = None
        """Called when a song of this front-end starts again on another worker."""

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._app_context = self._app.open_async()
        await self._app_context.__aenter__()
        self._downloads.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Results a killed front-end had downloaded and not delivered yet: the songs are
        # followed again from the ledger, and downloaded again (the lock tells a folder
        # of another live process on this data folder from a dead one's).
        await asyncio.to_thread(sweep_abandoned, self._downloads, "")
        self._admission_connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True
        )
        self._tasks = [
            asyncio.create_task(self._listen(), name="queue-listen"),
            asyncio.create_task(self._poll(), name="queue-poll"),
        ]

    async def shutdown(self, timeout: float) -> list[JobHandle]:  # noqa: ASYNC109
        """Stop taking songs; wait up to ``timeout`` for results in flight. The rest go on
        on the workers: their handles fail with ``PoolShutdownError`` so the chat flow
        keeps them for the next start, which picks them up by job id."""
        self._closing = True
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        unfinished = [flight.handle for flight in self._in_flight.values()]
        for handle in unfinished:
            handle.publish(Failed(PoolShutdownError()))
        self._in_flight.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._cleanups, return_exceptions=True)
        if self._admission_connection is not None:
            await self._admission_connection.close()
        if self._app_context is not None:
            await self._app_context.__aexit__(None, None, None)
        await self._blobs.close()
        return unfinished

    # -- the backend interface ------------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Songs waiting in the whole fleet's queue (as of the last poll)."""
        return self._queued

    def active_jobs(self, user_ref: str) -> int:
        return sum(1 for f in self._in_flight.values() if f.handle.user_ref == user_ref)

    async def submit(self, request: SeparationRequest) -> JobHandle:
        """Queue ``request`` (or follow it, when a job with its id is already queued: a
        restarted front-end resuming its songs)."""
        if self._closing:
            raise PoolShutdownError()
        job_id = request.job_id or uuid.uuid4().hex
        handle = JobHandle(job_id, request, lambda: self._cancel(job_id))
        existing = await self._ledger.find(job_id)
        if existing is not None:
            queue_job_id = existing.queue_job_id
            logger.info("job %s: following queue job %s", job_id, queue_job_id)
        else:
            queue_job_id = await self._enqueue(job_id, request)
        self._track(job_id, handle, queue_job_id)
        return handle

    async def render(self, request: RenderRequest) -> JobResult:
        """A delivered song again with other controls, from its stems in the blob store
        (``RenderingBackend``; raises as ``FleetRenderer.render`` does)."""
        if self._closing:
            raise PoolShutdownError()
        return await self._renders.render(request)

    async def cached_render(self, request: RenderRequest) -> JobResult | None:
        """The render if a worker made it before (downloaded, verified), else None."""
        return await self._renders.cached(request)

    # -- for the operator -------------------------------------------------------------------
    def describe_blobs(self) -> str:
        return self._blobs.describe()

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """The queue's connections open, nothing else started (for ``karaoke-bot check``)."""
        async with self._app.open_async():
            try:
                yield
            finally:
                await self._blobs.close()

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        """What /readyz adds for a front-end: the queue answers, the blob store answers,
        and some worker is alive to take songs."""

        async def queue() -> bool:
            return bool(await self._app.job_manager.check_connection_async())

        async def blob_store() -> bool:
            await self._blobs.check()
            return True

        async def workers() -> bool:
            return await self.workers_alive() > 0

        return {"queue": queue, "blob_store": blob_store, "workers_alive": workers}

    async def queue_depth(self) -> dict[str, int]:
        """The queue's jobs by state."""
        rows = await fetch_all(self._app, _BY_STATE, queue=self._queue.name)
        return {str(row["state"]): int(row["jobs"]) for row in rows}

    async def workers_alive(self) -> int:
        """Workers whose heartbeat is recent (for readiness and metrics)."""
        rows = await fetch_all(self._app, _WORKERS_ALIVE, seconds=self._queue.stalled_after_seconds)
        return int(rows[0]["alive"])

    # -- submitting -------------------------------------------------------------------------
    async def _enqueue(self, job_id: str, request: SeparationRequest) -> int:
        await self._blobs.put_file(input_key(job_id), request.input_path)
        digest = request.input_sha256  # taken as the chat flow saved the upload
        if digest is None:
            digest = await asyncio.to_thread(file_sha256, request.input_path)
        # Identical songs with identical options run one after another fleet-wide: the
        # second finds the first's result in the shared cache.
        # procrastinate's locks span every queue: name the queue so that two fleets on
        # one database never wait for each other.
        lock = f"{self._queue.name}:song:{digest}:{request.stems}:{request.encoding.format}"
        try:
            queue_job_id = await self._admit_and_defer(job_id, request, lock)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._blobs.delete(input_key(job_id))
            raise
        await self._ledger.register(queue_job_id, job_id)
        logger.info("job %s: queued as %s", job_id, queue_job_id)
        return queue_job_id

    async def _admit_and_defer(self, job_id: str, request: SeparationRequest, lock: str) -> int:
        connection = self._admission_connection
        assert connection is not None, "DistributedBackend.start() was not called"
        key = zlib.crc32(f"karaoke-admission:{self._queue.name}".encode())
        async with self._admission:
            await connection.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                rows = await fetch_all(
                    self._app, _COUNTS,
                    user_ref=request.user_ref, queue=self._queue.name, task=TASK_NAME,
                )  # fmt: skip
                queued, user_active = int(rows[0]["queued"]), int(rows[0]["user_active"])
                if user_active >= self._limits.max_jobs_per_user:
                    raise UserJobLimitError(limit=self._limits.max_jobs_per_user)
                if queued >= self._limits.max_queued_jobs:
                    raise PoolBusyError(retry_after_seconds=self._limits.retry_after_seconds)
                # Round-robin between users: each user's n-th waiting song gets priority
                # -n, and the queue takes the highest priority first (oldest first within).
                deferrer = self._app.configure_task(
                    name=TASK_NAME,
                    queue=self._queue.name,
                    priority=-user_active,
                    lock=lock,
                    queueing_lock=f"job:{job_id}",
                )
                return await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _track(self, job_id: str, handle: JobHandle, queue_job_id: int) -> None:
        self._in_flight[job_id] = _InFlight(handle, queue_job_id)
        self._wake.set()

    async def _cancel(self, job_id: str) -> None:
        flight = self._in_flight.get(job_id)
        if flight is None:
            return
        await self._app.job_manager.cancel_job_by_id_async(flight.queue_job_id, abort=True)
        self._wake.set()
        deadline = time.monotonic() + 30.0
        while not flight.handle.done and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            self._wake.set()

    # -- following jobs ---------------------------------------------------------------------
    async def _listen(self) -> None:
        """Progress and outcome notices from the workers (reconnecting when dropped)."""
        channel = progress_channel(self._queue.name)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f'LISTEN "{channel}"')
                    async for notice in connection.notifies():
                        self._on_notice(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("queue progress connection lost (%s); reconnecting", error)
                await asyncio.sleep(1.0)

    def _on_notice(self, text: str) -> None:
        note = read_progress_message(text)
        if note is None:
            logger.debug("ignored a malformed progress message")
            return
        flight = self._in_flight.get(note.job_id)
        if flight is None:
            return
        if note.attempt > flight.attempt_seen and not flight.resolving:
            if flight.attempt_seen and self.on_retry is not None:
                self.on_retry()
            flight.attempt_seen = note.attempt
            flight.fraction = 0.0
            flight.handle.publish(Attempt(note.attempt, flight.queue_job_id))
        if note.outcome:
            self._wake.set()
        elif note.event is None or flight.resolving:
            return
        elif note.attempt < flight.attempt_seen:
            # A superseded worker, resumed, still reports its attempt: not the user's.
            logger.debug(
                "job %s: progress of superseded attempt %d ignored", note.job_id, note.attempt
            )
        elif isinstance(note.event, Running):
            if note.event.fraction < flight.fraction:
                return  # never backwards within an attempt
            flight.fraction = note.event.fraction
            if flight.running_since is None:
                flight.running_since = time.monotonic()
            flight.handle.publish(note.event)
        else:
            flight.handle.publish(note.event)

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._limits.poll_interval_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._check_in_flight()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("checking jobs in flight failed: %s", error)

    async def _check_in_flight(self) -> None:
        if time.monotonic() - self._capacity_checked > _CAPACITY_SAMPLE_SECONDS:
            self._capacity = await self.workers_alive() * self._queue.worker_concurrency
            self._capacity_checked = time.monotonic()
        waiting = await fetch_all(self._app, _WAITING, queue=self._queue.name, task=TASK_NAME)
        self._queued = len(waiting)
        if not self._in_flight:
            return
        flights = {f.queue_job_id: f for f in self._in_flight.values() if not f.resolving}
        # The queue's status first, the ledger second: an outcome recorded in between is
        # then seen, never mistaken for a row that ended without one.
        statuses = {
            int(row["id"]): str(row["status"])
            for row in await fetch_all(self._app, _STATUSES, ids=list(flights))
        }
        states = await self._ledger.states(flights)
        positions = {int(row["id"]): index for index, row in enumerate(waiting, start=1)}
        for queue_job_id, flight in flights.items():
            state = states.get(queue_job_id)
            status = statuses.get(queue_job_id)
            if state is not None and state.outcome is not None:
                flight.resolving = True
                self._spawn(self._resolve(flight, state))
            elif status == "cancelled":
                self._finish(flight, Cancelled())
            elif status in ("failed", "aborted") or (status is None and state is None):
                # The queue row ended without an outcome: the task crashed outside our
                # code, or the row was deleted by hand.
                self._finish(flight, Failed(JobFailedError(f"queue job ended as {status}")))
            elif queue_job_id in positions and not isinstance(flight.handle.state, Queued | None):
                pass  # it ran before (a retry): keep showing its last progress
            elif queue_job_id in positions:
                position = positions[queue_job_id]
                flight.handle.publish(Queued(position=position, eta_seconds=self._eta(position)))

    def _eta(self, position: int) -> float | None:
        """Wait before a song at ``position`` starts: songs ahead of it, run as many at a
        time as the live workers take, at the recent time per song (None until measured)."""
        if self._seconds_per_song is None or self._capacity < 1:
            return None
        return math.ceil(position / self._capacity) * self._seconds_per_song

    def _measured(self, flight: _InFlight) -> None:
        if flight.running_since is None:
            return  # a cache hit, or followed after a restart: says nothing about speed
        seconds = time.monotonic() - flight.running_since
        previous = self._seconds_per_song
        self._seconds_per_song = seconds if previous is None else 0.7 * previous + 0.3 * seconds

    async def _resolve(self, flight: _InFlight, state: RunState) -> None:
        outcome = Outcome.from_dict(state.outcome or {})
        try:
            if outcome.status == "cancelled":
                self._finish(flight, Cancelled())
            elif outcome.status == "failed":
                self._finish(flight, Failed(error_from_dict(outcome.error or {})))
            else:
                assert outcome.cache_key is not None
                result = await self._download(flight, outcome)
                if result is None:
                    await self._requeue(flight)
                else:
                    self._measured(flight)
                    self._finish(flight, Done(result), keep_blobs=True)
        except Exception as error:
            logger.warning("job %s: delivering the outcome failed: %s", flight.handle.job_id, error)
            self._finish(flight, Failed(JobFailedError(str(error))))

    async def _download(self, flight: _InFlight, outcome: Outcome) -> JobResult | None:
        """The result's files next to the bot, verified; None when the cached copy is
        damaged or gone (it is removed, so the next attempt recomputes it)."""
        assert outcome.cache_key is not None
        prefix = result_prefix(outcome.cache_key)
        job_id = flight.handle.job_id
        workdir = await asyncio.to_thread(JobFolder.create, self._downloads, f"{job_id}-")
        folder = workdir.path
        try:
            manifest = ResultManifest.from_json(await self._blobs.get_bytes(prefix + MANIFEST_NAME))
            if manifest.expired(time.time(), self._limits.result_max_age_seconds):
                raise ValueError("past pool.cache_max_age_hours")
            outputs = await download_verified(self._blobs, manifest.outputs, folder)
        except (BlobNotFoundError, ValueError) as error:
            logger.warning("job %s: cached result unusable (%s); computing it again", job_id, error)
            workdir.remove()
            await self._blobs.delete_prefix(prefix)
            return None
        except BaseException:
            workdir.remove()
            raise
        cleanup = functools.partial(self._spawn_cleanup, job_id, flight.queue_job_id)
        return JobResult(
            outputs=outputs,
            duration_seconds=manifest.duration_seconds,
            cache_hit=outcome.cache_hit,
            bitrate_kbps=manifest.bitrate_kbps,
            cache_key=manifest.cache_key,
            input_tags=dict(manifest.input_tags),
            pin=_Download(workdir, cleanup),
        )

    async def _requeue(self, flight: _InFlight) -> None:
        """Queue the song again after its cached result turned out damaged."""
        job_id = flight.handle.job_id
        flight.requeues += 1
        self.requeued_corrupt += 1
        if flight.requeues > self._queue.max_attempts:
            self._finish(flight, Failed(JobFailedError("the result kept arriving damaged")))
            return
        request = dataclasses.replace(flight.handle.request, job_id=job_id)
        deferrer = self._app.configure_task(
            name=TASK_NAME, queue=self._queue.name, queueing_lock=f"job:{job_id}"
        )
        queue_job_id = await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
        await self._ledger.register(queue_job_id, job_id)
        flight.queue_job_id = queue_job_id
        flight.resolving = False
        self._wake.set()

    def _finish(
        self, flight: _InFlight, event: Done | Failed | Cancelled, *, keep_blobs: bool = False
    ) -> None:
        job_id = flight.handle.job_id
        self._in_flight.pop(job_id, None)
        flight.handle.publish(event)
        if not keep_blobs:
            self._spawn_cleanup(job_id, flight.queue_job_id)

    def _spawn_cleanup(self, job_id: str, queue_job_id: int) -> None:
        async def clean() -> None:
            try:
                await self._blobs.delete(input_key(job_id))
                await self._ledger.forget(queue_job_id)
            except Exception as error:
                logger.warning("job %s: cleaning up its upload failed: %s", job_id, error)

        self._spawn(clean())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
