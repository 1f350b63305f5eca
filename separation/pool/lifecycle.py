"""The pool as callers see it: start, submit, cancel, shutdown.

:class:`SeparationPool` owns the parts (workers, job slots, flights, processing, cache
sweeping) and wires them together. A submission is hashed and looked up in the result
cache here; a miss boards the flight for its cache key (``separation.pool.flights``),
whose computation waits for a job slot (``separation.pool.slots``) and is then processed
under the job timeout (``separation.pool.processing``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from separation.cache.results import CacheEntry, CacheUsage, ResultCache, cache_key, file_sha256
from separation.cpu_budget import CpuBudget, CpuPlan, available_cores
from separation.errors import (
    JobTimeoutError,
    PoolBusyError,
    PoolError,
    PoolShutdownError,
    UserJobLimitError,
)
from separation.jobs import (
    Cancelled,
    Done,
    Failed,
    JobHandle,
    JobResult,
    RenderRequest,
    Running,
    SeparationRequest,
)
from separation.model.batching import BatchRunner, BatchScheduler
from separation.model.engine import run_batch
from separation.model.loading import LoadedModel
from separation.model.offload import run_blocking
from separation.model.workers import Worker
from separation.pool.config import ModelLoader, PoolConfig
from separation.pool.flights import Flight, Flights, typed_error
from separation.pool.processing import FlightProcessor, fallback_title, result_from_entry
from separation.pool.rendering import Renderer
from separation.pool.slots import JobSlots
from separation.pool.sweeping import CacheSweeper
from separation.pool.tasks import TaskSet, cancel_all
from separation.workdir import private_dirs, sweep_abandoned

logger = logging.getLogger(__name__)

EntryFiller = Callable[[Path], Awaitable[tuple[dict[str, Path], dict[str, Path], dict[str, Any]]]]
"""Writes a result's files into a cache staging folder (``SeparationPool.adopt_entry``)."""


@dataclass(eq=False)
class _Submission:
    handle: JobHandle = field(init=False)
    task: asyncio.Task[None] | None = None
    flight: Flight | None = None
    stop_reason: PoolError | None = None


class SeparationPool:
    """Implements :class:`~separation.jobs.SeparationBackend` with local workers."""

    def __init__(
        self, config: PoolConfig, load_model: ModelLoader, *, runner: BatchRunner = run_batch
    ) -> None:
        self.config = config
        self._load_model = load_model
        self._runner = runner
        self._cache = ResultCache(config.cache_dir, config.cache)
        self._workers: list[Worker] = []
        self._worker_tasks = TaskSet()
        self._background = TaskSet()
        self._model_fingerprint = ""
        self._submissions: list[_Submission] = []
        self._slots = JobSlots(config.max_running_jobs, self._workers)
        self._flights = Flights(self._compute)
        self._sweeper = CacheSweeper(self._cache, config.tmp_root, config.cache_sweep_seconds)
        self.cpu = CpuBudget(
            config.cpu or CpuPlan.for_cores(available_cores(), torch.get_num_threads())
        )
        self._processor = FlightProcessor(
            config,
            self._cache,
            self.cpu,
            on_progress=self._slots.publish_positions,
            on_stored=self._evict_soon,
        )
        self._renderer = Renderer(
            self._cache,
            self.cpu,
            ffmpeg=config.ffmpeg,
            tmp_root=config.tmp_root,
            max_queued=config.max_queued_renders,
        )
        self._started = False
        self.startup_seconds: dict[str, float] = {}
        """Seconds each start-up step took ("load cpu", "warm-up cpu"): the first user's
        song waits for neither, since both happen in :meth:`start`."""
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Load the model on every device, start the workers and the cache sweeper."""
        if self._started:
            return
        await run_blocking(None, private_dirs, self.config.tmp_root)
        await run_blocking(None, sweep_abandoned, self.config.tmp_root)
        batches = BatchScheduler()
        first: LoadedModel | None = None
        for index, device in enumerate(self.config.devices):
            loading = time.perf_counter()
            model = await run_blocking(None, self._load_model, device)
            self.startup_seconds[f"load {device}"] = time.perf_counter() - loading
            if first is None:
                first = model
                self._model_fingerprint = await run_blocking(None, _fingerprint, model)
            worker = Worker(
                f"worker-{index}-{device}",
                model,
                batches,
                runner=self._runner,
                batch_size=self.config.batch_size,
                cpu=self.cpu,
                overlap_accumulation=self.config.overlap_accumulation,
                priority=self.config.worker_priority,
            )
            if self.config.sweep_batch_sizes and device.type == "cuda":
                sweeping = time.perf_counter()
                await worker.choose_batch_size(self.config.sweep_batch_sizes)
                self.startup_seconds[f"batch sweep {device}"] = time.perf_counter() - sweeping
            if self.config.warm_up:
                warming = time.perf_counter()
                await worker.warm_up()
                self.startup_seconds[f"warm-up {device}"] = time.perf_counter() - warming
            self._workers.append(worker)
        assert first is not None
        self._processor.attach(first, batches)
        self._slots.plan_for(first, self.config.options)
        for worker in self._workers:
            self._worker_tasks.spawn(worker.run())
        self._background.spawn(self._sweeper.sweep_periodically())
        self._started = True
        logger.info(
            "pool started: %d worker(s), batch size %d, %d job slot(s); %s; CPU: %s",
            len(self._workers),
            self.config.batch_size,
            self.config.max_running_jobs,
            ", ".join(f"{step} {seconds:.2f} s" for step, seconds in self.startup_seconds.items()),
            self.cpu.plan.describe(),
        )

    async def shutdown(self, timeout: float) -> list[JobHandle]:  # noqa: ASYNC109
        """Stop taking work, let running jobs finish within ``timeout`` seconds.

        Queued jobs and those still running after ``timeout`` fail with
        ``PoolShutdownError``; their handles are returned (nothing is dropped silently).
        """
        self._closing = True
        submissions = list(self._submissions)
        not_started = self._flights.not_started()
        for flight in not_started:
            self._flights.stop(flight, PoolShutdownError())
        for submission in submissions:
            if submission.flight is None and submission.task is not None:
                submission.stop_reason = PoolShutdownError()
                submission.task.cancel()
        running = [flight.task for flight in self._slots.running if flight.task is not None]
        if running:
            _, late = await asyncio.wait(running, timeout=timeout)
            for flight in self._slots.running:
                if flight.task in late:
                    self._flights.stop(flight, PoolShutdownError())
        tasks = [s.task for s in submissions if s.task is not None]
        tasks += [f.task for f in not_started if f.task is not None]
        if tasks:
            await asyncio.wait(tasks)
        await cancel_all(self._worker_tasks, self._background)
        self._renderer.close()
        for worker in self._workers:
            await run_blocking(None, worker.close)
        not_done = [s.handle for s in submissions if not isinstance(s.handle.state, Done)]
        logger.info("pool stopped; %d job(s) not completed", len(not_done))
        return not_done

    def cache_usage(self) -> CacheUsage | None:
        """The result cache's disk use against its limit, as measured at the last new
        result or sweep (None before the first sweep, which runs at start)."""
        return self._cache.usage()

    def _evict_soon(self) -> None:
        self._background.spawn(self._sweeper.evict())

    # -- the backend interface --------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Accepted jobs not started yet (hashing, or waiting for a slot)."""
        hashing = sum(1 for s in self._submissions if s.flight is None)
        return hashing + self._slots.queued

    def active_jobs(self, user_ref: str) -> int:
        return sum(1 for s in self._submissions if s.handle.user_ref == user_ref)

    async def submit(self, request: SeparationRequest) -> JobHandle:
        """Accept ``request`` and return its handle at once (see ``SeparationBackend``)."""
        if self._closing:
            raise PoolShutdownError()
        if not self._started:
            raise RuntimeError("SeparationPool.start() was not called")
        if self.active_jobs(request.user_ref) >= self.config.max_jobs_per_user:
            raise UserJobLimitError(limit=self.config.max_jobs_per_user)
        if self.queue_length >= self.config.max_queued_jobs:
            raise PoolBusyError(retry_after_seconds=self._slots.retry_after())
        submission = _Submission()
        job_id = request.job_id or uuid.uuid4().hex
        submission.handle = JobHandle(job_id, request, functools.partial(self._cancel, submission))
        submission.task = asyncio.create_task(self._serve(submission))
        self._submissions.append(submission)
        return submission.handle

    async def render(self, request: RenderRequest) -> JobResult:
        """A separated song re-rendered with ``request.options`` from its kept stems, in
        seconds and without the model (``separation.pool.rendering``); pinned for the
        caller like any result. ``request.lane`` says whether a user waits for it as a
        first result or it is an extra that yields to songs and may be refused.

        Raises:
            RendersBusyError: too many re-renders are queued (extras only).
            StemsExpiredError: the song's stems are no longer kept.
            PoolShutdownError: the pool is stopping.
        """
        if self._closing:
            raise PoolShutdownError()
        if not self._started:
            raise RuntimeError("SeparationPool.start() was not called")
        result = await self._renderer.render(request, sample_rate=self._processor.model.samplerate)
        self._evict_soon()
        return result

    async def cached_render(self, request: RenderRequest) -> JobResult | None:
        """``request``'s files if they were rendered before (pinned for the caller), else
        None: what a press would cost is known before it is charged."""
        return await self._renderer.cached(request)

    async def stored_entry(self, key: str) -> CacheEntry | None:
        """The cache entry of a result, its kept stems included, pinned for the caller
        (release ``entry.pin``); None once evicted. A distributed worker copies the stems
        to the shared cache with the result, so any front-end can render from them."""
        return await run_blocking(None, self._cache.lookup, key)

    async def adopt_entry(self, key: str, fill: EntryFiller) -> None:
        """Store a result made elsewhere (a distributed worker copying a song's stems from
        the shared cache to render from them): ``fill`` writes the files into the folder
        it is given and returns (outputs, stems, metadata) as ``ResultCache.commit``
        takes them. Nothing is stored when ``fill`` raises."""
        staging = await run_blocking(None, self._cache.staging)
        try:
            outputs, stems, metadata = await fill(staging)
        except BaseException:
            await run_blocking(None, self._cache.discard_staging, staging)
            raise
        entry = await run_blocking(None, self._cache.commit, key, staging, outputs, metadata, stems)
        if entry.pin is not None:
            entry.pin.release()
        self._evict_soon()

    async def _cancel(self, submission: _Submission) -> None:
        task = submission.task
        if task is None or task.done():
            return
        flight = submission.flight
        task.cancel()
        await asyncio.wait([task])
        if flight is not None and not flight.handles and flight.task is not None:
            await asyncio.wait([flight.task])  # it was stopped: wait until it cleaned up

    # -- one submission ---------------------------------------------------------------
    async def _serve(self, submission: _Submission) -> None:
        handle = submission.handle
        try:
            result = await self._obtain(submission)
        except asyncio.CancelledError:
            reason = submission.stop_reason
            handle.publish(Failed(reason) if reason is not None else Cancelled())
        except Exception as error:
            handle.publish(Failed(typed_error(error)))
        else:
            if handle.done:  # cancelled as the result arrived: nobody will deliver it
                result.release()
            handle.publish(Done(result))
        finally:
            self._submissions.remove(submission)

    async def _obtain(self, submission: _Submission) -> JobResult:
        request = submission.handle.request
        digest = request.input_sha256
        if digest is None:  # the caller did not hash it as it saved it
            digest = await run_blocking(None, file_sha256, request.input_path)
        key = self.result_key(request, digest)
        entry = await run_blocking(None, self._cache.lookup, key)
        if entry is not None:
            logger.info("job %s: cache hit", submission.handle.job_id)
            return result_from_entry(entry, cache_hit=True)
        pointers = self._stems_pointers(request, digest)
        encoded = await self._renderer.from_stems(
            request, pointers, sample_rate=self._processor.model.samplerate
        )
        if encoded is not None:
            logger.info("job %s: encoded from the song's kept stems", submission.handle.job_id)
            self._evict_soon()
            return encoded
        flight = self._flights.board(key, request, submission.handle)
        flight.stems_pointer = flight.stems_pointer or pointers[0]
        submission.flight = flight
        return await self._flights.result_for(flight, submission.handle)

    def result_key(self, request: SeparationRequest, input_sha256: str) -> str:
        """The cache key of ``request``'s result (call after :meth:`start`): a remote
        worker uses it to look for the result in a cache shared by several hosts."""
        return cache_key(input_sha256, self._key_settings(request))

    def _key_settings(self, request: SeparationRequest) -> dict[str, Any]:
        """Everything besides the input bytes that changes the output files."""
        return {
            **self._stems_settings(request),
            "stems": request.stems,
            "encoding": dataclasses.asdict(request.encoding),
            "max_output_bytes": request.max_output_bytes,
            "min_mp3_bitrate": request.min_mp3_bitrate if request.max_output_bytes else None,
        }

    def _stems_settings(self, request: SeparationRequest) -> dict[str, Any]:
        """What changes a song's lossless stems and titles, whatever the encoding."""
        return {
            "model": self._model_fingerprint,
            "options": dataclasses.asdict(self.config.options),
            "title": fallback_title(request),
        }

    def _stems_pointers(self, request: SeparationRequest, input_sha256: str) -> list[str]:
        """Where to look for stems ``request``'s outputs can be encoded from: the song's
        separation in the same stem mode, then (for two stems) a four-stem one. The first
        is where this request's own separation points to its stems."""
        modes = [request.stems, "four"] if request.stems == "two" else [request.stems]
        settings = self._stems_settings(request)
        return [cache_key(input_sha256, {**settings, "stems_of": mode}) for mode in modes]

    # -- one computation --------------------------------------------------------------
    async def _compute(self, flight: Flight) -> JobResult:
        """A flight's work: wait for a job slot, then process it under the job timeout."""
        await self._slots.wait_for_slot(flight)
        flight.started = True
        flight.publish(Running(0.0, None))
        deadline = asyncio.timeout(self.config.job_timeout_seconds)
        try:
            async with deadline:
                return await self._processor.process(flight)
        except TimeoutError as error:
            if deadline.expired():
                raise JobTimeoutError(limit_seconds=self.config.job_timeout_seconds) from error
            raise
        finally:
            self._slots.release(flight)


def _fingerprint(model: LoadedModel) -> str:
    """A digest of the model's weights: a different model never shares cache entries."""
    # The precision is part of it: a bf16 result is close to the fp32 one, not equal.
    described = f"{model.name}:{model.sources}:{model.weights}:{model.precision}"
    digest = hashlib.sha256(described.encode())
    for sub_model in model.sub_models:
        for name, tensor in sub_model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()
