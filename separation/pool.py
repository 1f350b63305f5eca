"""The in-process worker pool: many users' songs in, separated files out, fairly.

A submitted song goes through these steps, each off the event loop where it blocks:

1. *hash*: the SHA-256 of the input, which with the model and options is the cache key;
   a cached result is returned at once, and a song already being separated for someone
   else is joined rather than run twice (single-flight);
2. *queue*: jobs wait for one of ``max_running_jobs`` slots, handed out round-robin
   between users (``separation.scheduler``);
3. *decode* into a raw file in a private job folder, with the header the caller already
   read (never probing twice); the true length is published (``Decoded``) and the MP3
   bitrate is fitted to the caller's size budget here, before any model time is spent;
4. *separate*: the song's segments join those of the other running songs in shared
   forward passes (``separation.batching``, ``separation.workers``); an out-of-memory
   error shrinks the batch, then the segment;
5. *render* the outputs straight into a cache staging folder and commit the entry; each
   caller gets the entry pinned (``JobResult.release`` unpins it once delivered).

Job folders are owned by a lock, so those a killed process left behind are swept at
start and with every cache sweep (``separation.workdir``).

Every intermediate array stays on disk (the engine's accumulators, the decoded input,
streamed encoders), so memory does not grow with song length. The pool knows nothing
of chats: callers talk to it through :class:`~separation.jobs.SeparationBackend`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from separation.batching import BatchRunner, BatchScheduler, SegmentTooLargeError
from separation.cache import CacheEntry, CachePolicy, ResultCache, cache_key, file_sha256
from separation.decode import AudioLimits, DecodedAudio
from separation.encode import EncodingSpec, choose_mp3_bitrate
from separation.engine import SeparatedStems, SeparationJob, SeparationOptions, run_batch
from separation.errors import (
    AudioInputError,
    JobFailedError,
    JobTimeoutError,
    OutOfMemoryError,
    PoolBusyError,
    PoolError,
    PoolShutdownError,
    SeparationError,
    UserJobLimitError,
)
from separation.eta import segments_for, start_times
from separation.jobs import (
    Cancelled,
    Decoded,
    Done,
    Failed,
    JobHandle,
    JobResult,
    ProgressEvent,
    Queued,
    Running,
    SeparationRequest,
)
from separation.models import LoadedModel
from separation.offload import run_blocking
from separation.pipeline import PipelineConfig, decode_input, output_tags
from separation.render import output_names, render_outputs
from separation.scheduler import FairQueue
from separation.workdir import JobFolder, private_dirs, sweep_abandoned
from separation.workers import Worker

logger = logging.getLogger(__name__)

ModelLoader = Callable[[torch.device], LoadedModel]
"""Loads (or returns the already loaded) model for a device, e.g. ``ModelCache.get``."""

# Until a job is decoded its length is unknown; the queue estimate assumes this.
_TYPICAL_SONG_SECONDS = 240.0
_MIN_RETRY_AFTER_SECONDS = 5.0
_UNKNOWN_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class PoolConfig:
    ffmpeg: str
    tmp_root: Path
    """Job folders (decoded input, accumulators) go below this; removed after each job."""
    cache_dir: Path
    """Finished outputs live here, in the result cache."""
    devices: tuple[torch.device, ...] = (torch.device("cpu"),)
    """One worker per entry; repeat a device for several workers on it."""
    batch_size: int = 1
    """Segments per forward pass (they may come from different songs)."""
    max_running_jobs: int = 2
    """Songs decoded and separated at the same time; others wait in the queue."""
    max_queued_jobs: int = 100
    max_jobs_per_user: int = 3
    """Queued plus running jobs of one user."""
    job_timeout_seconds: float = 1800.0
    """From the moment a job leaves the queue; queueing time does not count."""
    limits: AudioLimits = field(default_factory=AudioLimits)
    options: SeparationOptions = field(default_factory=SeparationOptions)
    cache: CachePolicy = field(default_factory=CachePolicy)
    cache_sweep_seconds: float = 600.0
    """How often expired cache entries are removed even when nothing new is stored."""
    min_segment_seconds: float = 1.0
    """The out-of-memory fallback halves the segment length down to this, then fails."""
    progress_interval_seconds: float = 0.5
    warm_up: bool = True
    """Run one forward pass per worker at start (measures speed for queue estimates)."""


@dataclass(eq=False)
class _Flight:
    """One computation (one cache key) and the handles waiting for its result."""

    key: str
    request: SeparationRequest
    handles: list[JobHandle]
    result: asyncio.Future[JobResult]
    admitted: asyncio.Future[None]
    owner: JobHandle | None = None
    """The handle whose request runs the model (the others get ``cache_hit=True``)."""
    task: asyncio.Task[None] | None = None
    stop_reason: PoolError | None = None
    started: bool = False
    job: SeparationJob | None = None
    separation_started_at: float = 0.0
    last_progress_at: float = 0.0
    state: ProgressEvent | None = None

    @property
    def user_ref(self) -> str:
        return self.request.user_ref

    def publish(self, event: ProgressEvent) -> None:
        self.state = event
        for handle in self.handles:
            handle.publish(event)


@dataclass(eq=False)
class _Submission:
    handle: JobHandle = field(init=False)
    task: asyncio.Task[None] | None = None
    flight: _Flight | None = None
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
        self._pipeline = PipelineConfig(
            ffmpeg=config.ffmpeg,
            tmp_root=config.tmp_root,
            limits=config.limits,
            options=config.options,
        )
        self._batches: BatchScheduler | None = None
        self._workers: list[Worker] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._model: LoadedModel | None = None
        self._model_fingerprint = ""
        self._submissions: list[_Submission] = []
        self._flights: dict[str, _Flight] = {}
        self._queue: FairQueue[_Flight] = FairQueue()
        self._running: list[_Flight] = []
        self._started = False
        self._closing = False
        self._evicting = False
        self._typical_segments = 0

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Load the model on every device, start the workers and the cache sweeper."""
        if self._started:
            return
        await run_blocking(None, private_dirs, self.config.tmp_root)
        await run_blocking(None, sweep_abandoned, self.config.tmp_root)
        self._batches = BatchScheduler()
        for index, device in enumerate(self.config.devices):
            model = await run_blocking(None, self._load_model, device)
            if self._model is None:
                self._model = model
                self._model_fingerprint = await run_blocking(None, _fingerprint, model)
            worker = Worker(
                f"worker-{index}-{device}",
                model,
                self._batches,
                runner=self._runner,
                batch_size=self.config.batch_size,
            )
            if self.config.warm_up:
                await worker.warm_up()
            self._workers.append(worker)
        model = self._model
        assert model is not None
        segment = float(model.sub_models[0].segment)
        passes = len(model.sub_models) * max(self.config.options.shifts, 1)
        self._typical_segments = segments_for(
            _TYPICAL_SONG_SECONDS, segment, self.config.options.overlap, passes
        )
        self._worker_tasks = [asyncio.create_task(worker.run()) for worker in self._workers]
        self._spawn(self._sweep_cache_periodically())
        self._started = True
        logger.info(
            "pool started: %d worker(s), batch size %d, %d job slot(s)",
            len(self._workers),
            self.config.batch_size,
            self.config.max_running_jobs,
        )

    async def shutdown(self, timeout: float) -> list[JobHandle]:  # noqa: ASYNC109
        """Stop taking work, let running jobs finish within ``timeout`` seconds.

        Queued jobs and those still running after ``timeout`` fail with
        ``PoolShutdownError``; their handles are returned (nothing is dropped silently).
        """
        self._closing = True
        submissions = list(self._submissions)
        not_started = [flight for flight in self._flights.values() if not flight.started]
        for flight in not_started:
            self._stop_flight(flight, PoolShutdownError())
        for submission in submissions:
            if submission.flight is None and submission.task is not None:
                submission.stop_reason = PoolShutdownError()
                submission.task.cancel()
        running = [flight.task for flight in self._running if flight.task is not None]
        if running:
            _, late = await asyncio.wait(running, timeout=timeout)
            for flight in list(self._running):
                if flight.task in late:
                    self._stop_flight(flight, PoolShutdownError())
        tasks = [s.task for s in submissions if s.task is not None]
        tasks += [f.task for f in not_started if f.task is not None]
        if tasks:
            await asyncio.wait(tasks)
        for task in self._worker_tasks + list(self._background):
            task.cancel()
        await asyncio.gather(*self._worker_tasks, *self._background, return_exceptions=True)
        for worker in self._workers:
            await run_blocking(None, worker.close)
        self._worker_tasks = []
        not_done = [s.handle for s in submissions if not isinstance(s.handle.state, Done)]
        logger.info("pool stopped; %d job(s) not completed", len(not_done))
        return not_done

    # -- the backend interface --------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Accepted jobs not started yet (hashing, or waiting for a slot)."""
        hashing = sum(1 for s in self._submissions if s.flight is None)
        return hashing + len(self._queue)

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
            raise PoolBusyError(retry_after_seconds=self._retry_after())
        submission = _Submission()
        job_id = request.job_id or uuid.uuid4().hex
        submission.handle = JobHandle(job_id, request, functools.partial(self._cancel, submission))
        submission.task = asyncio.create_task(self._serve(submission))
        self._submissions.append(submission)
        return submission.handle

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
            handle.publish(Failed(_typed(error)))
        else:
            if handle.done:  # cancelled as the result arrived: nobody will deliver it
                result.release()
            handle.publish(Done(result))
        finally:
            self._submissions.remove(submission)

    async def _obtain(self, submission: _Submission) -> JobResult:
        request = submission.handle.request
        digest = await run_blocking(None, file_sha256, request.input_path)
        key = cache_key(digest, self._key_settings(request))
        entry = await run_blocking(None, self._cache.lookup, key)
        if entry is not None:
            logger.info("job %s: cache hit", submission.handle.job_id)
            return _result_from_entry(entry, cache_hit=True)
        flight = self._flights.get(key)
        if flight is None:
            flight = self._start_flight(key, request)
        elif flight.state is not None:
            submission.handle.publish(flight.state)
        flight.handles.append(submission.handle)
        flight.owner = flight.owner or submission.handle
        submission.flight = flight
        try:
            shared = await asyncio.shield(flight.result)
            # Each caller delivers on its own schedule, so each holds its own pin.
            result = dataclasses.replace(shared, pin=shared.pin.share() if shared.pin else None)
        finally:
            flight.handles.remove(submission.handle)
            if flight.owner is submission.handle and not flight.result.done():
                flight.owner = flight.handles[0] if flight.handles else None
                if flight.owner is not None:  # the leaver's caller may delete its input file
                    flight.request = flight.owner.request
            if not flight.handles:
                if flight.result.done():
                    _release_flight_result(flight)
                else:
                    self._stop_flight(flight, None)
        if flight.owner is submission.handle:
            return result
        return dataclasses.replace(result, cache_hit=True)  # joined someone else's run

    def _key_settings(self, request: SeparationRequest) -> dict[str, Any]:
        """Everything besides the input bytes that changes the output files."""
        return {
            "model": self._model_fingerprint,
            "options": dataclasses.asdict(self.config.options),
            "stems": request.stems,
            "encoding": dataclasses.asdict(request.encoding),
            "max_output_bytes": request.max_output_bytes,
            "min_mp3_bitrate": request.min_mp3_bitrate if request.max_output_bytes else None,
            "title": _fallback_title(request),
        }

    # -- one computation --------------------------------------------------------------
    def _start_flight(self, key: str, request: SeparationRequest) -> _Flight:
        loop = asyncio.get_running_loop()
        flight = _Flight(key, request, [], loop.create_future(), loop.create_future())
        flight.result.add_done_callback(lambda future: future.cancelled() or future.exception())
        flight.task = asyncio.create_task(self._run_flight(flight))
        self._flights[key] = flight
        return flight

    def _stop_flight(self, flight: _Flight, reason: PoolError | None) -> None:
        """Cancel a computation: for its callers (``reason`` None) or the pool's reasons."""
        if flight.task is not None and not flight.task.done():
            flight.stop_reason = reason
            flight.task.cancel()

    async def _run_flight(self, flight: _Flight) -> None:
        try:
            result = await self._compute(flight)
        except asyncio.CancelledError:
            error: Exception = flight.stop_reason or JobFailedError("stopped")
            flight.result.set_exception(error)
        except Exception as error:
            if not isinstance(error, AudioInputError | SeparationError):
                logger.error("job for %s failed", flight.user_ref, exc_info=error)
            flight.result.set_exception(_typed(error))
        else:
            flight.result.set_result(result)
            if not flight.handles:
                result.release()
        finally:
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]

    async def _compute(self, flight: _Flight) -> JobResult:
        await self._wait_for_slot(flight)
        flight.started = True
        flight.publish(Running(0.0, None))
        deadline = asyncio.timeout(self.config.job_timeout_seconds)
        try:
            async with deadline:
                return await self._process(flight)
        except TimeoutError as error:
            if deadline.expired():
                raise JobTimeoutError(limit_seconds=self.config.job_timeout_seconds) from error
            raise
        finally:
            self._release_slot(flight)

    # -- job slots --------------------------------------------------------------------
    async def _wait_for_slot(self, flight: _Flight) -> None:
        # Even a job that starts at once goes through the queue: its user's round counts.
        self._queue.push(flight.user_ref, flight)
        self._admit()
        if flight.admitted.done():
            return
        try:
            await flight.admitted
        except asyncio.CancelledError:
            if not self._queue.remove(flight) and not flight.admitted.cancelled():
                self._release_slot(flight)  # admitted just before the cancellation landed
            self._publish_positions()
            raise

    def _release_slot(self, flight: _Flight) -> None:
        if flight in self._running:
            self._running.remove(flight)
        self._admit()

    def _admit(self) -> None:
        """Start queued jobs while slots are free, then tell the others their position."""
        while len(self._running) < self.config.max_running_jobs and len(self._queue):
            following = self._queue.pop()
            if following.admitted.done():  # cancelled while waiting; leaving on its own
                continue
            self._running.append(following)
            following.admitted.set_result(None)
        self._publish_positions()

    def _publish_positions(self) -> None:
        waiting = self._queue.items()
        if not waiting:
            return
        etas: list[float | None] = [None] * len(waiting)
        rate = sum(worker.meter.segments_per_second or 0.0 for worker in self._workers)
        if rate > 0:
            etas = list(
                start_times(
                    [self._remaining_segments(flight) for flight in self._running],
                    [self._typical_segments] * len(waiting),
                    self.config.max_running_jobs,
                    rate,
                )
            )
        for position, (flight, eta) in enumerate(zip(waiting, etas, strict=True), start=1):
            event = Queued(position, None if eta is None else round(eta, 1))
            if event != flight.state:
                flight.publish(event)

    def _remaining_segments(self, flight: _Flight) -> float:
        if flight.job is None:
            return float(self._typical_segments)
        return float(flight.job.total_segments - flight.job.completed_segments)

    def _retry_after(self) -> float:
        rate = sum(worker.meter.segments_per_second or 0.0 for worker in self._workers)
        if rate <= 0:
            return _UNKNOWN_RETRY_AFTER_SECONDS
        starts = start_times(
            [self._remaining_segments(flight) for flight in self._running],
            [self._typical_segments] * (len(self._queue) + 1),
            self.config.max_running_jobs,
            rate,
        )
        return max(_MIN_RETRY_AFTER_SECONDS, round(starts[-1]))

    # -- the work ---------------------------------------------------------------------
    async def _process(self, flight: _Flight) -> JobResult:
        request = flight.request
        model = self._current_model()
        folder = await run_blocking(None, JobFolder.create, self.config.tmp_root)
        workdir = folder.path
        staging: Path | None = None
        try:
            audio = await run_blocking(
                None,
                decode_input,
                request.input_path,
                workdir,
                config=self._pipeline,
                sample_rate=model.samplerate,
                info=request.probe,
            )
            flight.publish(Decoded(audio.duration_seconds))
            spec = _fit_encoding(request, audio.duration_seconds)
            stems = await self._separate(flight, audio, workdir)
            staging = await run_blocking(None, self._cache.staging)
            names = output_names(model.sources, request.stems)
            rendered = await run_blocking(
                None,
                render_outputs,
                stems,
                {name: staging / f"{name}.{spec.extension}" for name in names},
                stems=request.stems,
                spec=spec,
                tags=output_tags(audio.tags, _fallback_title(request), names),
                ffmpeg=self.config.ffmpeg,
                sample_rate=model.samplerate,
            )
            metadata = {
                "duration_seconds": audio.duration_seconds,
                "bitrate_kbps": _bitrate(spec),
                "input_tags": audio.tags,
                "gain": rendered.gain,
            }
            entry = await run_blocking(
                None, self._cache.commit, flight.key, staging, rendered.paths, metadata
            )
            staging = None
            self._spawn(self._evict_cache())
            return _result_from_entry(entry, cache_hit=False)
        finally:
            if staging is not None:
                await run_blocking(None, self._cache.discard_staging, staging)
            await run_blocking(None, folder.remove)

    async def _separate(
        self, flight: _Flight, audio: DecodedAudio, workdir: Path
    ) -> SeparatedStems:
        """Run the song's segments through the workers; retry with shorter segments on OOM."""
        assert self._batches is not None
        options = self.config.options
        progress = self._progress_callback(flight)
        for attempt in range(64):
            folder = workdir / f"attempt-{attempt}"
            folder.mkdir(mode=0o700)  # inside the private job folder
            job = SeparationJob(self._current_model(), audio, folder, options, progress=progress)
            flight.job = job
            flight.separation_started_at = time.monotonic()
            entry = self._batches.add(job)
            try:
                await entry.finished
                return job.stems()
            except SegmentTooLargeError as error:
                options = self._shorter_segments(options, error)
            finally:
                self._batches.remove(entry)
                await entry.drained.wait()  # no worker still writes into this attempt
            await run_blocking(None, shutil.rmtree, folder, True)  # free the disk before retrying
        raise AssertionError("unreachable: segments halve towards a floor")

    def _shorter_segments(
        self, options: SeparationOptions, error: SegmentTooLargeError
    ) -> SeparationOptions:
        current = options.segment_seconds or float(self._current_model().sub_models[0].segment)
        shorter = current / 2
        if shorter < self.config.min_segment_seconds:
            raise OutOfMemoryError(
                f"even {current:.1f}-second segments do not fit in the device's memory"
            ) from error
        logger.warning("one segment does not fit in memory; retrying with %.2f s", shorter)
        return dataclasses.replace(options, segment_seconds=shorter)

    def _progress_callback(self, flight: _Flight) -> Callable[[float], None]:
        loop = asyncio.get_running_loop()

        def from_worker_thread(fraction: float) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._report_progress, flight, fraction)

        return from_worker_thread

    def _report_progress(self, flight: _Flight, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - flight.last_progress_at < self.config.progress_interval_seconds:
            return
        flight.last_progress_at = now
        elapsed = now - flight.separation_started_at
        eta = elapsed * (1.0 - fraction) / fraction if fraction > 0 else None
        flight.publish(Running(round(fraction, 3), None if eta is None else round(eta, 1)))
        self._publish_positions()

    def _current_model(self) -> LoadedModel:
        if self._model is None:
            raise RuntimeError("SeparationPool.start() was not called")
        return self._model

    # -- housekeeping -----------------------------------------------------------------
    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _evict_cache(self) -> None:
        if self._evicting:
            return
        self._evicting = True
        try:
            await run_blocking(None, self._cache.evict)
        except OSError:
            logger.exception("cache eviction failed")
        finally:
            self._evicting = False

    async def _sweep_cache_periodically(self) -> None:
        while True:
            await self._evict_cache()
            try:  # folders a killed process left (another one may share tmp_root)
                await run_blocking(None, sweep_abandoned, self.config.tmp_root)
            except OSError:
                logger.exception("sweeping job folders failed")
            await asyncio.sleep(self.config.cache_sweep_seconds)


def _typed(error: Exception) -> Exception:
    """Typed errors pass through; anything else becomes a ``JobFailedError`` with a cause."""
    if isinstance(error, AudioInputError | SeparationError):
        return error
    wrapped = JobFailedError(f"separation failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _fallback_title(request: SeparationRequest) -> str:
    return request.fallback_title or request.input_path.stem


def _fit_encoding(request: SeparationRequest, duration_seconds: float) -> EncodingSpec:
    """Lower the MP3 bitrate to fit ``max_output_bytes`` (raises OutputTooLargeError)."""
    spec = request.encoding
    if request.max_output_bytes is None or spec.format != "mp3":
        return spec
    bitrate = choose_mp3_bitrate(
        duration_seconds,
        request.max_output_bytes,
        max_bitrate=spec.bitrate_kbps,
        min_bitrate=request.min_mp3_bitrate,
    )
    return dataclasses.replace(spec, bitrate_kbps=bitrate)


def _bitrate(spec: EncodingSpec) -> int | None:
    if spec.format == "mp3":
        return spec.bitrate_kbps
    if spec.format == "opus":
        return min(spec.bitrate_kbps, 256)  # the encoder's cap (separation.encode)
    return None


def _result_from_entry(entry: CacheEntry, *, cache_hit: bool) -> JobResult:
    metadata = entry.metadata
    return JobResult(
        outputs=dict(entry.outputs),
        duration_seconds=float(metadata["duration_seconds"]),
        cache_hit=cache_hit,
        bitrate_kbps=metadata.get("bitrate_kbps"),
        input_tags=dict(metadata.get("input_tags", {})),
        pin=entry.pin,
    )


def _release_flight_result(flight: _Flight) -> None:
    """Drop the computation's own pin once every caller has taken theirs."""
    future = flight.result
    if not future.cancelled() and future.exception() is None:
        future.result().release()


def _fingerprint(model: LoadedModel) -> str:
    """A digest of the model's weights: a different model never shares cache entries."""
    digest = hashlib.sha256(f"{model.name}:{model.sources}:{model.weights}".encode())
    for sub_model in model.sub_models:
        for name, tensor in sub_model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()
