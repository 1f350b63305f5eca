"""Estimated waits for queued jobs, from the speed the workers actually reach.

Work is counted in model segments (one segment = one sample of one forward pass), and
the pool's speed in segments per second, measured on every batch: that already includes
whatever batching gains the device gives. Running jobs share the workers round-robin,
so the wait of a queued job is simulated as processor sharing over the job slots: the
job starts when enough of the jobs ahead of it have finished to free a slot.
"""

from __future__ import annotations

import math


class ThroughputMeter:
    """Segments per second of one worker, smoothed (None until the first measurement)."""

    def __init__(self, smoothing: float = 0.3) -> None:
        self._smoothing = smoothing
        self.segments_per_second: float | None = None

    def record(self, segments: int, wall_seconds: float) -> None:
        if segments <= 0 or wall_seconds <= 0:
            return
        rate = segments / wall_seconds
        previous = self.segments_per_second
        self.segments_per_second = (
            rate if previous is None else previous + self._smoothing * (rate - previous)
        )


def segments_for(
    duration_seconds: float, segment_seconds: float, overlap: float, passes: int
) -> int:
    """How many segments a song of ``duration_seconds`` costs (as the engine plans it)."""
    stride = max(segment_seconds * (1.0 - overlap), 1e-3)
    return passes * max(1, math.ceil(duration_seconds / stride))


def start_times(
    running: list[float], queued: list[float], slots: int, segments_per_second: float
) -> list[float]:
    """Seconds from now until each queued job starts, in queue order.

    Args:
        running: remaining work (segments) of each running job.
        queued: work of each queued job, next to start first.
        slots: jobs that may run at once.
        segments_per_second: the pool's total speed.
    """
    active = [max(work, 0.0) for work in running]
    starts: list[float] = []
    now = 0.0
    pending = list(queued)
    while pending:
        while len(active) < slots and pending:
            starts.append(now)
            active.append(pending.pop(0))
        if not pending:
            break
        first = min(range(len(active)), key=active.__getitem__)
        smallest = active[first]
        now += smallest * len(active) / segments_per_second
        active = [work - smallest for index, work in enumerate(active) if index != first]
    return starts
