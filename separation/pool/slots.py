"""Job slots: how many songs run at once, who waits, in what order, and for how long.

At most ``max_running_jobs`` flights are decoded and separated at the same time; the
others wait in a queue that takes users in turn (``separation.pool.scheduler``). Waiting
flights are told their position and an estimated wait (``separation.model.eta``), from the
speed the workers measured; a full pool tells new callers when to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from separation.jobs import Queued
from separation.model.engine import SeparationOptions
from separation.model.eta import segments_for, start_times
from separation.model.loading import LoadedModel
from separation.model.workers import Worker
from separation.pool.flights import Flight
from separation.pool.scheduler import FairQueue

# Until a job is decoded its length is unknown; the queue estimate assumes this.
_TYPICAL_SONG_SECONDS = 240.0
_MIN_RETRY_AFTER_SECONDS = 5.0
_UNKNOWN_RETRY_AFTER_SECONDS = 60.0


class JobSlots:
    """The running flights and the fair queue of those waiting for a slot."""

    def __init__(self, max_running_jobs: int, workers: Sequence[Worker]) -> None:
        self._max_running = max_running_jobs
        self._workers = workers
        """The pool's workers (filled in at start): their speed makes the estimates."""
        self._queue: FairQueue[Flight] = FairQueue()
        self._running: list[Flight] = []
        self._typical_segments = 0

    @property
    def running(self) -> list[Flight]:
        return list(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def plan_for(self, model: LoadedModel, options: SeparationOptions) -> None:
        """Size a typical song in ``model``'s segments (the estimate for undecoded jobs)."""
        segment = float(model.segments[0])
        passes = len(model.sub_models) * max(options.shifts, 1)
        self._typical_segments = segments_for(
            _TYPICAL_SONG_SECONDS, segment, options.overlap, passes
        )

    async def wait_for_slot(self, flight: Flight) -> None:
        # Even a job that starts at once goes through the queue: its user's round counts.
        self._queue.push(flight.user_ref, flight)
        self._admit()
        if flight.admitted.done():
            return
        try:
            await flight.admitted
        except asyncio.CancelledError:
            if not self._queue.remove(flight) and not flight.admitted.cancelled():
                self.release(flight)  # admitted just before the cancellation landed
            self.publish_positions()
            raise

    def release(self, flight: Flight) -> None:
        if flight in self._running:
            self._running.remove(flight)
        self._admit()

    def _admit(self) -> None:
        """Start queued jobs while slots are free, then tell the others their position."""
        while len(self._running) < self._max_running and len(self._queue):
            following = self._queue.pop()
            if following.admitted.done():  # cancelled while waiting; leaving on its own
                continue
            self._running.append(following)
            following.admitted.set_result(None)
        self.publish_positions()

    def publish_positions(self) -> None:
        waiting = self._queue.items()
        if not waiting:
            return
        etas: list[float | None] = [None] * len(waiting)
        rate = self._rate()
        if rate > 0:
            etas = list(
                start_times(
                    [self._remaining_segments(flight) for flight in self._running],
                    [self._typical_segments] * len(waiting),
                    self._max_running,
                    rate,
                )
            )
        for position, (flight, eta) in enumerate(zip(waiting, etas, strict=True), start=1):
            event = Queued(position, None if eta is None else round(eta, 1))
            if event != flight.state:
                flight.publish(event)

    def retry_after(self) -> float:
        """Seconds until a job submitted now would start (for a full queue's answer)."""
        rate = self._rate()
        if rate <= 0:
            return _UNKNOWN_RETRY_AFTER_SECONDS
        starts = start_times(
            [self._remaining_segments(flight) for flight in self._running],
            [self._typical_segments] * (len(self._queue) + 1),
            self._max_running,
            rate,
        )
        return max(_MIN_RETRY_AFTER_SECONDS, round(starts[-1]))

    def _rate(self) -> float:
        return sum(worker.meter.segments_per_second or 0.0 for worker in self._workers)

    def _remaining_segments(self, flight: Flight) -> float:
        if flight.job is None:
            return float(self._typical_segments)
        return float(flight.job.total_segments - flight.job.completed_segments)
