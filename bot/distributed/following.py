"""Following songs in the fleet: what a front-end knows of each job in flight, how a
worker's progress notice moves it on, and how long a waiting song will wait.

Progress may be lost without harm (the outcome comes from the run ledger), so a notice
only ever moves a song forwards: a superseded attempt or a fraction going back is
ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import procrastinate
import psycopg

from bot.distributed.queue import fetch_all, queueing_lock
from bot.distributed.wire import TASK_NAME, ProgressNote, progress_channel
from separation.jobs import Attempt, JobHandle, Running

logger = logging.getLogger(__name__)

CAPACITY_SAMPLE_SECONDS = 10.0
_STATUSES = "SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%(ids)s)"
_WAITING_BY_LOCK = """
SELECT id FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND queueing_lock = %(lock)s AND status = 'todo'
"""
_WAITING = """
SELECT id FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status = 'todo'
 ORDER BY priority DESC, id ASC
"""


@dataclass
class InFlight:
    """A song this front-end follows, from its queue job to its outcome."""

    handle: JobHandle
    queue_job_id: int
    checked_at: float = 0.0
    resolving: bool = False
    requeues: int = 0
    attempt_seen: int = 0
    fraction: float = 0.0
    """The current attempt's progress as last shown (it never goes back)."""
    running_since: float | None = None


def apply_notice(flight: InFlight, note: ProgressNote, on_retry: Callable[[], None] | None) -> bool:
    """Show ``note`` on ``flight``'s handle; True when it says an outcome is in (the
    caller then reads the ledger at once instead of at the next poll)."""
    if note.attempt > flight.attempt_seen and not flight.resolving:
        if flight.attempt_seen and on_retry is not None:
            on_retry()
        flight.attempt_seen = note.attempt
        flight.fraction = 0.0
        flight.handle.publish(Attempt(note.attempt, flight.queue_job_id))
    if note.outcome:
        return True
    if note.event is None or flight.resolving:
        return False
    if note.attempt < flight.attempt_seen:
        # A superseded worker, resumed, still reports its attempt: not the user's.
        logger.debug("job %s: progress of superseded attempt %d ignored", note.job_id, note.attempt)
    elif isinstance(note.event, Running):
        if note.event.fraction < flight.fraction:
            return False  # never backwards within an attempt
        flight.fraction = note.event.fraction
        if flight.running_since is None:
            flight.running_since = time.monotonic()
        flight.handle.publish(note.event)
    else:
        flight.handle.publish(note.event)
    return False


@dataclass
class Pace:
    """The fleet's recent speed: what a waiting song's ETA is made of."""

    seconds_per_song: float | None = None
    capacity: int = 0
    """Songs the live workers take at once (workers x concurrency), sampled."""
    capacity_checked: float = 0.0

    def capacity_stale(self) -> bool:
        """Whether the capacity is due for another sample."""
        return time.monotonic() - self.capacity_checked > CAPACITY_SAMPLE_SECONDS

    def sampled(self, capacity: int) -> None:
        """Record a fresh sample of the capacity."""
        self.capacity = capacity
        self.capacity_checked = time.monotonic()

    def eta(self, position: int) -> float | None:
        """Wait before a song at ``position`` starts: songs ahead of it, run as many at a
        time as the live workers take, at the recent time per song (None until measured)."""
        if self.seconds_per_song is None or self.capacity < 1:
            return None
        return math.ceil(position / self.capacity) * self.seconds_per_song

    def measured(self, flight: InFlight) -> None:
        """Fold ``flight``'s running time into the time per song."""
        if flight.running_since is None:
            return  # a cache hit, or followed after a restart: says nothing about speed
        seconds = time.monotonic() - flight.running_since
        previous = self.seconds_per_song
        self.seconds_per_song = seconds if previous is None else 0.7 * previous + 0.3 * seconds


async def listen_for_notices(
    conninfo: str, queue_name: str, on_notice: Callable[[str], None]
) -> None:
    """Progress and outcome notices from the workers (reconnecting when dropped), each
    handed to ``on_notice``; runs until cancelled."""
    channel = progress_channel(queue_name)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True
            ) as connection:
                await connection.execute(f'LISTEN "{channel}"')
                async for notice in connection.notifies():
                    on_notice(notice.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("queue progress connection lost (%s); reconnecting", error)
            await asyncio.sleep(1.0)


async def waiting_jobs(app: procrastinate.App, queue_name: str) -> list[int]:
    """The queue jobs of songs waiting, first in line first."""
    rows = await fetch_all(app, _WAITING, queue=queue_name, task=TASK_NAME)
    return [int(row["id"]) for row in rows]


async def waiting_by_lock(app: procrastinate.App, queue_name: str, job_id: str) -> int | None:
    """The waiting queue job of ``job_id``, if one is queued: a front-end killed between
    deferring a song and registering it in the run ledger leaves such a row, which its
    successor must follow, not defer again (the queueing lock refuses a second row)."""
    rows = await fetch_all(app, _WAITING_BY_LOCK, queue=queue_name, lock=queueing_lock(job_id))
    return int(rows[0]["id"]) if rows else None


async def queue_statuses(app: procrastinate.App, queue_job_ids: list[int]) -> dict[int, str]:
    """The queue's status of each of ``queue_job_ids`` still in its table."""
    rows = await fetch_all(app, _STATUSES, ids=queue_job_ids)
    return {int(row["id"]): str(row["status"]) for row in rows}


async def poll_until_cancelled(
    wake: asyncio.Event, interval_seconds: float, check: Callable[[], Awaitable[None]]
) -> None:
    """Run ``check`` every ``interval_seconds``, or as soon as ``wake`` is set; a failed
    check is logged and tried again at the next round."""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_seconds):
                await wake.wait()
        wake.clear()
        try:
            await check()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("checking jobs in flight failed: %s", error)
