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

Slots are taken on the event loop, never by blocking an executor thread; the worker
thread only reads integers.

Lanes (issue 20). Not all ffmpeg work is equally urgent: a song's decode and encoders
are what its user waits for, a re-render of a song already delivered is an extra. Taken
first come first served, one user pressing five buttons on a 4-minute song held another
user's 20-second song at "Separating... 0%" for 90 s. So every request for slots names a
:class:`Lane`, and waiters are served by lane, then in the order they came: work for a
first result never waits behind after-the-fact work that has not started yet.

That alone would still make a song wait for a render already running (a rubberband pass
over a long song takes tens of seconds). So after-the-fact work holds its slot through
:meth:`CpuBudget.preemptible`, which hands its worker thread a *pause point* to call
between small pieces of work. When first-result work waits for a slot, the pause point
gives the slot to it and blocks the thread until the slot comes back; the paused ffmpeg
processes simply stop being read from or written to and sleep on their pipes (no
signals, nothing killed, nothing rendered twice). Chunking the render in time instead
would put seams into rubberband's output; SIGSTOP would leave a stopped process behind
if we died. The cost is one piece of work: a song waits at most for the render's current
piece (``separation.rendering.controls`` handles 0.37 s of audio at a time), not for its whole pass.
A paused render goes back in line ahead of the renders that came after it.

A song's model step holds no slot but uses the cores too: on the CPU, torch gets the
cores no ffmpeg holds, so a render running beside it would take a thread from the
song. So the pool marks its model step as first-result work under way
(:meth:`CpuBudget.occupied`), and after-the-fact work waits and pauses for it as for a
waiting song. Measured on 2 cores (``benchmarks/render_storm_benchmark.py``, tiny
model, a 10 s song during storms of presses on 40 s songs): with slots alone the song
took 1.74x its time alone, with the model step counted too 0.99x. The price is that
re-renders only run when no song is being worked on; under a steady stream of songs
they wait (and ``PoolConfig.max_queued_renders`` bounds how many do).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import functools
import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

logger = logging.getLogger(__name__)


class Lane(enum.IntEnum):
    """Whose work asks for a slot; a lower lane is always served first."""

    FIRST_RESULT = 0
    """A user waits for their song: its decode, encoders, lossless stems, and the render
    of the controls it was sent with."""
    AFTER_THE_FACT = 1
    """Work on a result already delivered: re-renders from the karaoke controls (and
    videos, next)."""


PausePoint = Callable[[], None]
"""Called by a worker thread between pieces of preemptible work; returns at once, or
after waiting while more urgent work used the slot."""

SlotEventKind = Literal["wait", "grant", "pause", "release"]


@dataclass(frozen=True)
class SlotEvent:
    """What happened to slots, for observers (tests and benchmarks watch the order)."""

    kind: SlotEventKind
    lane: Lane
    slots: int


SlotListener = Callable[[SlotEvent], None]


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

    @classmethod
    def for_one_song(cls, cores: int, model_threads: int) -> CpuPlan:
        """A plan for a pool that only ever holds one song (``karaoke-bot separate`` of
        one input): its decode and encoders never run beside a forward pass of another
        song, so they may take every core. On 2 cores its two MP3 encoders then run at
        once instead of one after the other (issue 26). Its extras (the cover, read
        beside the model step) still hold a slot and take a thread from torch."""
        shared = cls.for_cores(cores, model_threads)
        return replace(shared, audio_slots=shared.cores)

    def describe(self) -> str:
        return (
            f"{self.cores} core(s): model step up to {self.model_threads} torch thread(s), "
            f"one fewer per running ffmpeg; at most {self.audio_slots} ffmpeg run(s) at once"
        )


@dataclass(eq=False)
class _Waiter:
    lane: Lane
    ticket: int
    """Arrival order; a paused holder keeps its own to go back in line where it was."""
    processes: int
    granted: asyncio.Future[int]

    @property
    def order(self) -> tuple[int, int]:
        return (self.lane, self.ticket)


@dataclass(eq=False)
class _Holder:
    lane: Lane
    ticket: int
    slots: int


class CpuBudget:
    """The audio slots in use, who waits for one, and the torch threads the model step
    may take now."""

    def __init__(self, plan: CpuPlan) -> None:
        self.plan = plan
        self._in_use = 0
        self._waiters: list[_Waiter] = []
        """Sorted by lane, then ticket: the first is served next."""
        self._waiting = [0] * len(Lane)
        """Waiters per lane: read by worker threads at their pause points."""
        self._occupying = [0] * len(Lane)
        """Work per lane under way on the cores outside the slots (:meth:`occupied`)."""
        self._tickets = itertools.count()
        self._listeners: list[SlotListener] = []

    @property
    def in_use(self) -> int:
        return self._in_use

    def waiting(self, lane: Lane) -> int:
        """How many requests of ``lane`` wait for a slot."""
        return self._waiting[lane]

    def add_listener(self, listener: SlotListener) -> None:
        """Call ``listener`` with every :class:`SlotEvent`, on the event loop."""
        self._listeners.append(listener)

    def model_threads(self) -> int:
        """Threads for the next forward pass: the cores no ffmpeg holds, at least one.

        Called from the worker thread: it reads one integer the event loop writes.
        """
        free = self.plan.cores - self._in_use
        return max(1, min(self.plan.model_threads, free))

    @contextlib.asynccontextmanager
    async def audio(
        self, processes: int = 1, *, lane: Lane = Lane.FIRST_RESULT
    ) -> AsyncIterator[int]:
        """Hold slots for up to ``processes`` ffmpeg runs; yields how many were granted.

        Waits until at least one slot is free for ``lane`` (every waiter of a lower lane,
        and every earlier one of the same lane, goes first) and takes as many as are
        free, up to ``processes``: the caller runs that many at a time. The slots are
        given back without awaiting anything, so a cancelled holder cannot keep them.
        """
        granted = await self._acquire(lane, processes, next(self._tickets))
        try:
            yield granted
        finally:
            self._release(granted, lane)

    @contextlib.asynccontextmanager
    async def preemptible(self, lane: Lane) -> AsyncIterator[PausePoint]:
        """Hold one slot for work that can pause between pieces; yields its pause point.

        The worker thread doing the work calls the pause point between pieces (never the
        event loop: it blocks). While work of a lower lane waits for a slot, the pause
        point gives this one to it and returns once this holder's turn comes again,
        ahead of the ``lane`` requests that came after it.
        """
        ticket = next(self._tickets)
        holder = _Holder(lane, ticket, await self._acquire(lane, 1, ticket))
        try:
            yield functools.partial(self._pause_point, holder, asyncio.get_running_loop())
        finally:
            self._release(holder.slots, lane)

    @contextlib.contextmanager
    def occupied(self, lane: Lane) -> Iterator[None]:
        """Work of ``lane`` is under way on the cores without holding a slot: a song's
        model step on the CPU. While it is, work of a less urgent lane neither starts nor
        goes on (it pauses at its next pause point), so the model keeps every core the
        song would have had alone."""
        self._occupying[lane] += 1
        try:
            yield
        finally:
            self._occupying[lane] -= 1
            self._dispatch()

    def _yields(self, lane: Lane) -> bool:
        """Whether work of ``lane`` must make way: more urgent work waits or runs."""
        return any(
            self._waiting[more_urgent] or self._occupying[more_urgent]
            for more_urgent in range(lane)
        )

    def _pause_point(self, holder: _Holder, loop: asyncio.AbstractEventLoop) -> None:
        """On a worker thread: step aside while more urgent work waits (see above)."""
        if self._yields(holder.lane):  # integer reads, once per piece of work
            asyncio.run_coroutine_threadsafe(self._step_aside(holder), loop).result()

    async def _step_aside(self, holder: _Holder) -> None:
        if not self._yields(holder.lane):  # served meanwhile
            return
        slots, holder.slots = holder.slots, 0
        self._notify("pause", holder.lane, slots)
        self._release(slots, holder.lane)
        holder.slots = await self._acquire(holder.lane, 1, holder.ticket)

    async def _acquire(self, lane: Lane, processes: int, ticket: int) -> int:
        processes = max(1, processes)
        if not self._waiters and self._in_use < self.plan.audio_slots and not self._yields(lane):
            return self._take(lane, processes)
        waiter = _Waiter(lane, ticket, processes, asyncio.get_running_loop().create_future())
        bisect.insort(self._waiters, waiter, key=lambda queued: queued.order)
        self._waiting[lane] += 1
        self._notify("wait", lane, processes)
        # Slots may be free while less urgent waiters are held back (a song's model step
        # is under way): then this one, ahead of them, is served at once.
        self._dispatch()
        try:
            return await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._waiting[lane] -= 1
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self._release(waiter.granted.result(), lane)  # granted as it was cancelled
            raise

    def _take(self, lane: Lane, processes: int) -> int:
        granted = min(processes, self.plan.audio_slots - self._in_use)
        self._in_use += granted
        self._notify("grant", lane, granted)
        return granted

    def _release(self, slots: int, lane: Lane) -> None:
        """Give ``slots`` back and hand them on in lane order: nobody slips in between."""
        if not slots:
            return
        self._in_use -= slots
        self._notify("release", lane, slots)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiters and self._in_use < self.plan.audio_slots:
            if self._yields(self._waiters[0].lane):  # the rest are no more urgent
                return
            waiter = self._waiters.pop(0)
            self._waiting[waiter.lane] -= 1
            if not waiter.granted.done():  # else cancelled, not yet out of _acquire
                waiter.granted.set_result(self._take(waiter.lane, waiter.processes))

    def _notify(self, kind: SlotEventKind, lane: Lane, slots: int) -> None:
        event = SlotEvent(kind, lane, slots)
        for listener in self._listeners:
            listener(event)
