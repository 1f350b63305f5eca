"""Cutting the segments of every running song into shared forward passes.

``apply_model`` runs one segment per forward pass, which leaves a GPU mostly idle. Here
every running :class:`~separation.model.engine.SeparationJob` offers its segments and a batch
takes segments that share a batch key (sub-model, input length) from several songs,
round-robin, so that each song advances at the same pace and none waits for another to
finish. The scheduler lives on the event loop (no locks); workers run the batches.

:func:`run_isolated` runs one batch and, when it fails, splits it in halves and retries,
so an out-of-memory error leads to smaller batches and an exception caused by one song's
segment fails that song alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from separation.model.engine import Segment, SeparationJob
from separation.model.loading import LoadedModel

logger = logging.getLogger(__name__)

BatchRunner = Callable[[LoadedModel, Sequence[Segment]], list[torch.Tensor]]
"""``engine.run_batch`` or a stand-in: one forward pass over segments sharing a key."""


class SegmentTooLargeError(Exception):
    """One segment alone does not fit in the device's memory (the job may retry smaller)."""


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    # The CPU allocator raises a plain RuntimeError.
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


@dataclass
class IsolatedOutcome:
    outputs: list[torch.Tensor | BaseException]
    """Per segment, in order: its output or the error that failed it."""
    out_of_memory: bool = False
    """True when some pass ran out of memory (the caller lowers its batch size)."""


def run_isolated(
    runner: BatchRunner, model: LoadedModel, segments: Sequence[Segment]
) -> IsolatedOutcome:
    """Run ``segments`` in one pass; on failure, in halves, down to single segments."""
    try:
        return IsolatedOutcome(list(runner(model, segments)))
    except Exception as error:
        out_of_memory = is_out_of_memory(error)
        if out_of_memory and model.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(segments) == 1:
            if out_of_memory:
                return IsolatedOutcome([SegmentTooLargeError(str(error))], out_of_memory=True)
            logger.exception("a forward pass failed")
            return IsolatedOutcome([error])
        logger.info(
            "batch of %d failed (%s); retrying in halves", len(segments), type(error).__name__
        )
        middle = len(segments) // 2
        first = run_isolated(runner, model, segments[:middle])
        second = run_isolated(runner, model, segments[middle:])
        return IsolatedOutcome(
            first.outputs + second.outputs,
            out_of_memory=out_of_memory or first.out_of_memory or second.out_of_memory,
        )


@dataclass(eq=False)
class BatchEntry:
    """A job being separated, as the scheduler sees it."""

    job: SeparationJob
    finished: asyncio.Future[None]
    """Resolves when every segment is accumulated; fails with the first segment's error."""
    in_flight: int = 0
    active: bool = True
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the entry is removed and no worker still holds one of its segments."""

    def _update_drained(self) -> None:
        if not self.active and self.in_flight == 0:
            self.drained.set()


@dataclass
class Batch:
    segments: list[Segment]
    entries: list[BatchEntry]
    """The entry of each segment (same order)."""


class BatchScheduler:
    """The running jobs, and the batches workers take from them."""

    def __init__(self) -> None:
        self._entries: list[BatchEntry] = []
        self._cursor = 0
        self._work = asyncio.Event()

    def add(self, job: SeparationJob) -> BatchEntry:
        entry = BatchEntry(job, asyncio.get_running_loop().create_future())
        entry.finished.add_done_callback(lambda future: future.cancelled() or future.exception())
        self._entries.append(entry)
        self._work.set()
        return entry

    def remove(self, entry: BatchEntry) -> None:
        """Take no more segments from ``entry``; ``entry.drained`` tells when it is idle."""
        if entry in self._entries:
            self._entries.remove(entry)
        entry.active = False
        entry._update_drained()

    async def next_batch(self, limit: int) -> Batch:
        """Wait for work and take up to ``limit`` segments sharing one key."""
        while True:
            batch = self.take(limit)
            if batch.segments:
                return batch
            self._work.clear()
            await self._work.wait()

    def take(self, limit: int) -> Batch:
        """Up to ``limit`` segments: one per job in turn, all with the first job's key."""
        count = len(self._entries)
        rotation = [self._entries[(self._cursor + i) % count] for i in range(count)]
        rotation = [entry for entry in rotation if not entry.finished.done()]
        self._cursor = (self._cursor + 1) % max(count, 1)
        key = next((k for k in (e.job.peek_key() for e in rotation) if k is not None), None)
        batch = Batch([], [])
        if key is None:
            return batch
        while len(batch.segments) < limit:
            before = len(batch.segments)
            for entry in rotation:
                if len(batch.segments) == limit:
                    break
                for segment in entry.job.take_segments(1, key):
                    batch.segments.append(segment)
                    batch.entries.append(entry)
                    entry.in_flight += 1
            if len(batch.segments) == before:
                break
        return batch

    def settle(self, batch: Batch, errors: Sequence[BaseException | None]) -> None:
        """Record a finished batch: ``errors[i]`` is None when segment i was accumulated."""
        for entry, error in zip(batch.entries, errors, strict=True):
            entry.in_flight -= 1
            if not entry.finished.done():
                if error is not None:
                    entry.finished.set_exception(error)
                elif entry.job.done:
                    entry.finished.set_result(None)
            entry._update_drained()
        self._work.set()  # a worker may have skipped jobs that now have work again
