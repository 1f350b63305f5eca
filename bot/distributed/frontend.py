"""The distributed backend as a front-end sees it: ``SeparationBackend`` over the queue.

``submit`` uploads the song to the blob store and defers a queue job; the handle it
returns is fed from two sources. Progress (queue position, decoded length, percent) comes
from the workers' NOTIFY messages and from the queue table, and may be lost without harm.
The outcome comes from the run ledger, which this front-end polls while it has jobs in
flight (and reads at once when a NOTIFY says an outcome is in): a notification missed
during a reconnect, or a front-end restarted mid-job, still ends with the right result.

A result is downloaded next to the bot and verified (``bot.distributed.downloads``); a
damaged one is queued again, so a corrupt blob is recomputed, never served.

Karaoke controls go through the queue too, as render jobs a worker runs from the song's
shared stems (``bot.distributed.render_requests``).

Admission is decided fleet-wide under one lock (``bot.distributed.admission``); following
the songs in flight is ``bot.distributed.following``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import procrastinate

from bot.distributed.admission import Admission, FrontendLimits
from bot.distributed.blobs import BlobStore
from bot.distributed.downloads import download_result
from bot.distributed.fleet_status import fleet_readiness, queue_depth, workers_alive
from bot.distributed.following import (
    InFlight,
    Pace,
    apply_notice,
    listen_for_notices,
    poll_until_cancelled,
    queue_statuses,
    waiting_by_lock,
    waiting_jobs,
)
from bot.distributed.render_requests import RenderLimits, RenderRequests
from bot.distributed.runs import RunLedger, RunState
from bot.distributed.wire import (
    Outcome,
    error_from_dict,
    input_key,
    read_progress_message,
)
from bot.settings import QueueSettings
from separation.cache.results import file_sha256
from separation.errors import (
    JobFailedError,
    PoolShutdownError,
)
from separation.jobs import (
    Cancelled,
    Done,
    Failed,
    JobHandle,
    JobResult,
    Queued,
    RenderRequest,
    SeparationRequest,
)
from separation.workdir import sweep_abandoned

logger = logging.getLogger(__name__)


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
        self._in_flight: dict[str, InFlight] = {}
        self._admission = Admission(
            app=app, conninfo=conninfo, queue_name=queue.name, limits=limits
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._cleanups: set[asyncio.Task[None]] = set()
        self._queued = 0
        self._closing = False
        self._app_context: Any = None
        self.requeued_corrupt = 0
        self._pace = Pace()
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
        await self._admission.open()
        self._tasks = [
            asyncio.create_task(
                listen_for_notices(self._conninfo, self._queue.name, self._on_notice),
                name="queue-listen",
            ),
            asyncio.create_task(
                poll_until_cancelled(
                    self._wake, self._limits.poll_interval_seconds, self._check_in_flight
                ),
                name="queue-poll",
            ),
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
        await self._admission.close()
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
        queue_job_id = await self._queued_before(job_id)
        if queue_job_id is not None:
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
        """What /readyz adds for a front-end (see ``fleet_readiness``)."""
        return fleet_readiness(self._app, self._blobs, self.workers_alive)

    async def queue_depth(self) -> dict[str, int]:
        """The queue's jobs by state."""
        return await queue_depth(self._app, self._queue.name)

    async def workers_alive(self) -> int:
        """Workers whose heartbeat is recent (for readiness and metrics)."""
        return await workers_alive(self._app, self._queue.stalled_after_seconds)

    # -- submitting -------------------------------------------------------------------------
    async def _queued_before(self, job_id: str) -> int | None:
        """The queue job a previous front-end made for ``job_id``: the ledger's, or a
        waiting one it deferred but did not live to register (registered now)."""
        existing = await self._ledger.find(job_id)
        if existing is not None:
            return existing.queue_job_id
        orphan = await waiting_by_lock(self._app, self._queue.name, job_id)
        if orphan is not None:
            await self._ledger.register(orphan, job_id)
        return orphan

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
            queue_job_id = await self._admission.admit_and_defer(job_id, request, lock)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._blobs.delete(input_key(job_id))
            raise
        await self._ledger.register(queue_job_id, job_id)
        logger.info("job %s: queued as %s", job_id, queue_job_id)
        return queue_job_id

    def _track(self, job_id: str, handle: JobHandle, queue_job_id: int) -> None:
        self._in_flight[job_id] = InFlight(handle, queue_job_id)
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
    def _on_notice(self, text: str) -> None:
        note = read_progress_message(text)
        if note is None:
            logger.debug("ignored a malformed progress message")
            return
        flight = self._in_flight.get(note.job_id)
        if flight is not None and apply_notice(flight, note, self.on_retry):
            self._wake.set()

    async def _check_in_flight(self) -> None:
        if self._pace.capacity_stale():
            self._pace.sampled(await self.workers_alive() * self._queue.worker_concurrency)
        waiting = await waiting_jobs(self._app, self._queue.name)
        self._queued = len(waiting)
        if not self._in_flight:
            return
        flights = {f.queue_job_id: f for f in self._in_flight.values() if not f.resolving}
        # The queue's status first, the ledger second: an outcome recorded in between is
        # then seen, never mistaken for a row that ended without one.
        statuses = await queue_statuses(self._app, list(flights))
        states = await self._ledger.states(flights)
        positions = {job: index for index, job in enumerate(waiting, start=1)}
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
                flight.handle.publish(
                    Queued(position=position, eta_seconds=self._pace.eta(position))
                )

    async def _resolve(self, flight: InFlight, state: RunState) -> None:
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
                    self._pace.measured(flight)
                    self._finish(flight, Done(result), keep_blobs=True)
        except Exception as error:
            logger.warning("job %s: delivering the outcome failed: %s", flight.handle.job_id, error)
            self._finish(flight, Failed(JobFailedError(str(error))))

    async def _download(self, flight: InFlight, outcome: Outcome) -> JobResult | None:
        """The result's files next to the bot, verified (see ``download_result``)."""
        job_id = flight.handle.job_id
        return await download_result(
            self._blobs,
            self._downloads,
            job_id,
            outcome,
            max_age_seconds=self._limits.result_max_age_seconds,
            cleanup=functools.partial(self._spawn_cleanup, job_id, flight.queue_job_id),
        )

    async def _requeue(self, flight: InFlight) -> None:
        """Queue the song again after its cached result turned out damaged."""
        job_id = flight.handle.job_id
        flight.requeues += 1
        self.requeued_corrupt += 1
        if flight.requeues > self._queue.max_attempts:
            self._finish(flight, Failed(JobFailedError("the result kept arriving damaged")))
            return
        request = dataclasses.replace(flight.handle.request, job_id=job_id)
        queue_job_id = await self._admission.defer_again(job_id, request)
        await self._ledger.register(queue_job_id, job_id)
        flight.queue_job_id = queue_job_id
        flight.resolving = False
        self._wake.set()

    def _finish(
        self, flight: InFlight, event: Done | Failed | Cancelled, *, keep_blobs: bool = False
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
