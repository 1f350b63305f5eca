"""A worker: one model on one device, fed batches by the scheduler, on its own thread.

Each worker has a single-thread executor, so a device never runs two forward passes of
the same worker at once and the event loop never runs one at all. Accumulating outputs
(file I/O) happens on the same thread right after the forward pass: the next batch is
only taken once this one is written, which bounds memory to one batch per worker.

The worker thread is scheduled like every other thread (``WorkerPriority.NORMAL``).
Until issue 26 it ran at nice +5 so that torch's threads would not keep the event loop
waiting; measured again on 2 cores with ``benchmarks/loop_delay_benchmark.py`` (one song
through the pool, batch size 1), the loop's 10 ms wake-ups were late by 4 ms at p99
whichever the setting, because a thread that mostly sleeps (the loop) preempts a running
one when it wakes. But nice +5 handed the model's time to every neighbour: beside two
busy-loop processes a song took 4.3x its idle time at nice +5 against 2.0x at normal
priority. ``SCHED_BATCH`` (the same weight, no wake-up preemption) was tried too and lost
to normal under load (torch's threads wake at every barrier and then waited for a
neighbour's time slice). Torch's OpenMP threads are created by the worker thread and
inherit its scheduling. On a GPU it changes nothing.

On a GPU the forward pass is fast enough that the CPU-side work of a batch (the
overlap-add of its outputs into the accumulator files, about 10 ms per 7.8-second
segment on a Zen 4 core) would leave the device idle for a comparable time. There the
worker accumulates on a second thread while the next forward pass runs: at most one
batch is accumulating and one in the model, so memory stays bounded to two batches.
On the CPU the accumulation stays on the worker thread; a second thread would only take
a core from torch's.

After an out-of-memory error the worker halves its batch size (the failed batch itself
was already retried in halves by ``run_isolated``) and grows it back step by step after
a run of clean batches, so a transient memory spike does not slow it down for good.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from separation.cpu_budget import CpuBudget
from separation.errors import JobFailedError
from separation.model.batch_sweep import recommend_batch_size, sweep_batch_sizes
from separation.model.batching import (
    Batch,
    BatchRunner,
    BatchScheduler,
    IsolatedOutcome,
    run_isolated,
)
from separation.model.eta import ThroughputMeter
from separation.model.loading import LoadedModel
from separation.model.offload import run_blocking
from separation.model.precision import forward_precision

logger = logging.getLogger(__name__)

R = TypeVar("R")
Errors = Sequence[BaseException | None]
"""Per segment of a batch: None once accumulated, or the error that failed it."""

_CLEAN_BATCHES_BEFORE_GROWING = 20
_LOWERED_NICENESS = 5


class WorkerPriority(enum.Enum):
    """How the worker thread (and torch's threads it starts) is scheduled; the others
    than NORMAL are kept for ``benchmarks/loop_delay_benchmark.py`` to compare."""

    NORMAL = "normal"
    """As every other thread: the model's full share against other processes."""
    LOWERED = "lowered"
    """nice +5 (the default until issue 26): the model yields to every neighbour."""
    BATCH = "batch"
    """``SCHED_BATCH``: full weight, but no wake-up preemption (slower under load)."""


def apply_thread_priority(priority: WorkerPriority) -> None:
    """Schedule the calling thread as ``priority`` says (Linux applies both per thread);
    where the system refuses, the thread stays as it is, which is always safe."""
    thread_id = threading.get_native_id()
    try:
        if priority is WorkerPriority.BATCH:
            os.sched_setscheduler(thread_id, os.SCHED_BATCH, os.sched_param(0))
        elif priority is WorkerPriority.LOWERED:
            current = os.getpriority(os.PRIO_PROCESS, thread_id)
            os.setpriority(os.PRIO_PROCESS, thread_id, current + _LOWERED_NICENESS)
    except (AttributeError, OSError):  # not on Linux, or not permitted
        logger.debug("could not schedule the worker thread as %s", priority.value)


class Worker:
    def __init__(
        self,
        name: str,
        model: LoadedModel,
        scheduler: BatchScheduler,
        *,
        runner: BatchRunner,
        batch_size: int,
        cpu: CpuBudget | None = None,
        overlap_accumulation: bool | None = None,
        priority: WorkerPriority = WorkerPriority.NORMAL,
    ) -> None:
        """``overlap_accumulation``: accumulate on a second thread during the next
        forward pass (default: on CUDA devices)."""
        self.name = name
        self.model = model
        self.meter = ThroughputMeter()
        self.batch_limit = batch_size
        self._batch_size = batch_size
        self._scheduler = scheduler
        self._runner = runner
        self._clean_batches = 0
        self._cpu = cpu if model.device.type == "cpu" else None
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=name,
            initializer=functools.partial(apply_thread_priority, priority),
        )
        if overlap_accumulation is None:
            overlap_accumulation = model.device.type == "cuda"
        self._accumulator = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-accumulate")
            if overlap_accumulation
            else None
        )

    async def choose_batch_size(self, sizes: Sequence[int]) -> int:
        """Measure ``sizes`` on this worker's device and use the recommended one."""
        timings = await run_blocking(self._executor, sweep_batch_sizes, self.model, sizes)
        chosen = recommend_batch_size(timings)
        logger.info(
            "%s: batch sweep (ms per segment) %s: batch size %d",
            self.name,
            ", ".join(
                f"{size}: {'out of memory' if t is None else f'{t * 1000:.1f}'}"
                for size, t in timings.items()
            ),
            chosen,
        )
        self._batch_size = self.batch_limit = chosen
        return chosen

    async def warm_up(self) -> None:
        """One forward pass on silence: initialises the device and measures its speed."""
        await run_blocking(self._executor, self._warm_up)

    def _warm_up(self) -> None:
        sub_model = self.model.sub_models[0]
        length = int(self.model.segments[0] * self.model.samplerate)
        inputs = torch.zeros(self._batch_size, self.model.audio_channels, length)
        started = time.perf_counter()
        # In the precision songs will use: autocast picks other kernels, which want
        # their own first call.
        with torch.inference_mode(), forward_precision(self.model.precision, self.model.device):
            sub_model(inputs.to(self.model.device))
        self.meter.record(self._batch_size, time.perf_counter() - started)

    async def run(self) -> None:
        """Serve batches until cancelled."""
        accumulating: asyncio.Task[None] | None = None
        try:
            while True:
                batch = await self._scheduler.next_batch(self.batch_limit)
                if self._accumulator is None:
                    errors = await self._off_loop(batch, self._executor, self._process, batch)
                    if errors is not None:
                        self._scheduler.settle(batch, errors)
                    continue
                outcome = await self._off_loop(batch, self._executor, self._timed_forward, batch)
                if outcome is None:
                    continue
                if accumulating is not None:
                    await asyncio.shield(accumulating)  # one batch accumulating at a time
                accumulating = asyncio.create_task(self._accumulate_off_loop(batch, outcome))
        finally:
            if accumulating is not None:
                await asyncio.wait([accumulating])  # it settles its own batch

    async def _accumulate_off_loop(self, batch: Batch, outcome: IsolatedOutcome) -> None:
        assert self._accumulator is not None
        errors = await self._off_loop(batch, self._accumulator, self._accumulate, batch, outcome)
        if errors is not None:
            self._scheduler.settle(batch, errors)

    async def _off_loop(
        self,
        batch: Batch,
        executor: ThreadPoolExecutor,
        function: Callable[..., R],
        *args: object,
    ) -> R | None:
        """``function(*args)`` on ``executor``; when it fails, the batch is settled as
        failed and None returned (cancellation settles it and propagates)."""
        try:
            return await run_blocking(executor, function, *args)
        except asyncio.CancelledError:
            self._scheduler.settle(batch, [JobFailedError("worker stopped")] * len(batch.entries))
            raise
        except Exception as error:  # a bug here must not stop the worker serving others
            logger.exception("%s: batch failed outside the model", self.name)
            failure = JobFailedError(f"internal error: {type(error).__name__}: {error}")
            failure.__cause__ = error
            self._scheduler.settle(batch, [failure] * len(batch.entries))
            return None

    def _process(self, batch: Batch) -> Errors:
        """Forward pass and overlap-add, on the worker thread."""
        started = time.perf_counter()
        outcome = self._forward(batch)
        forwarded = time.perf_counter()
        errors = self._accumulate(batch, outcome)
        if not outcome.out_of_memory:
            self.meter.record(len(batch.segments), time.perf_counter() - started)
        logger.debug(
            "%s: %d segment(s): forward %.3f s, accumulate %.3f s",
            self.name, len(batch.segments), forwarded - started, time.perf_counter() - forwarded,
        )  # fmt: skip
        return errors

    def _timed_forward(self, batch: Batch) -> IsolatedOutcome:
        """The forward pass alone: with accumulation overlapped, it sets the pace."""
        started = time.perf_counter()
        outcome = self._forward(batch)
        if not outcome.out_of_memory:
            self.meter.record(len(batch.segments), time.perf_counter() - started)
        return outcome

    def _forward(self, batch: Batch) -> IsolatedOutcome:
        if self._cpu is not None:
            self._share_cores(self._cpu.model_threads())
        outcome = run_isolated(self._runner, self.model, batch.segments)
        self._adapt_batch_limit(len(batch.segments), outcome.out_of_memory)
        return outcome

    def _accumulate(self, batch: Batch, outcome: IsolatedOutcome) -> Errors:
        errors: list[BaseException | None] = []
        for segment, output in zip(batch.segments, outcome.outputs, strict=True):
            if isinstance(output, BaseException):
                errors.append(output)
                continue
            try:
                segment.job.complete(segment, output)
            except Exception as error:
                logger.exception("%s: accumulating a segment failed", self.name)
                errors.append(error)
            else:
                errors.append(None)
        return errors

    @staticmethod
    def _share_cores(threads: int) -> None:
        """Use ``threads`` torch threads from this forward pass on (the cores no ffmpeg of
        another song holds, ``separation.cpu_budget``)."""
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def _adapt_batch_limit(self, size: int, out_of_memory: bool) -> None:
        if out_of_memory:
            self.batch_limit = max(1, min(self.batch_limit, size) // 2)
            self._clean_batches = 0
            logger.warning("%s: out of memory; batch size now %d", self.name, self.batch_limit)
            return
        self._clean_batches += 1
        if self._clean_batches >= _CLEAN_BATCHES_BEFORE_GROWING and (
            self.batch_limit < self._batch_size
        ):
            self.batch_limit += 1
            self._clean_batches = 0

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._accumulator is not None:
            self._accumulator.shutdown(wait=True)
