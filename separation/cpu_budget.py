"""Sharing the CPU cores between the model step and the ffmpeg work of other songs.

While one song is in the model, another is decoded and a third is encoded. On a small
CPU box all of them want the same cores, and oversubscribing them is worse than taking
turns: torch's OpenMP threads meet at a barrier after every operator, so when one of
them is preempted by an encoder the others wait for it. Measured on 2 cores (bf16
htdemucs forward passes while two MP3 encoders write a 4-minute song,
``benchmarks/cpu_sharing_benchmark.py``): with 2 torch threads and both encoders at
normal priority the model lost 4.0 s of its own time to 2.6 s of encoding; with the
encoders niced to 10 it lost 4.9 s and the encoding took 24 s; with one encoder at a
time and torch down to 1 thread while it runs, it lost 2.9 s and the encoding took 7 s.

So the pool counts. Every ffmpeg run of a song in the pool (its decode, its encoders)
holds one *audio slot* while it runs; there are ``cores - 1`` of them, at least one, so
the model step always keeps a core (never starved). Before each forward pass on the CPU
the worker sets torch's thread count to the cores no ffmpeg holds, at least one, so the
cores are never oversubscribed by our own work. Encoders of one song run as many at a
time as there are slots (both at once from 3 cores up, one after the other on 2).

Slots are taken on the event loop (an ``asyncio.Condition``), never by blocking an
executor thread; the worker thread only reads an integer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class CpuPlan:
    """How many threads each kind of work may use at most."""

    cores: int
    model_threads: int
    """torch's intra-op threads when no ffmpeg runs."""
    audio_slots: int
    """ffmpeg runs (decodes, encoders) of songs in the pool at the same time."""

    @classmethod
    def for_cores(cls, cores: int, model_threads: int) -> CpuPlan:
        cores = max(1, cores)
        return cls(cores, max(1, model_threads), max(1, cores - 1))

    def describe(self) -> str:
        return (
            f"{self.cores} core(s): model step up to {self.model_threads} torch thread(s), "
            f"one fewer per running ffmpeg; at most {self.audio_slots} ffmpeg run(s) at once"
        )


class CpuBudget:
    """The audio slots in use, and the torch threads the model step may take now."""

    def __init__(self, plan: CpuPlan) -> None:
        self.plan = plan
        self._in_use = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def in_use(self) -> int:
        return self._in_use

    def model_threads(self) -> int:
        """Threads for the next forward pass: the cores no ffmpeg holds, at least one.

        Called from the worker thread: it reads one integer the event loop writes.
        """
        free = self.plan.cores - self._in_use
        return max(1, min(self.plan.model_threads, free))

    @contextlib.asynccontextmanager
    async def audio(self, processes: int = 1) -> AsyncIterator[int]:
        """Hold slots for up to ``processes`` ffmpeg runs; yields how many were granted.

        Waits until at least one slot is free and takes as many as are free, up to
        ``processes``: the caller runs that many at a time. The slots are given back
        without awaiting anything, so a cancelled holder cannot keep them.
        """
        while self._in_use >= self.plan.audio_slots:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        granted = min(max(1, processes), self.plan.audio_slots - self._in_use)
        self._in_use += granted
        try:
            yield granted
        finally:
            self._in_use -= granted
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
