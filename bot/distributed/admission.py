"""Letting a song into the fleet's queue: the limits checked and the job deferred at once.

Admission (the queue limit, the per-user limit, round-robin priorities) is decided under
a PostgreSQL advisory lock held across the count and the insert, so two front-ends
cannot both let in the song that fills the queue.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg

from bot.distributed.queue import fetch_all, queueing_lock
from bot.distributed.wire import TASK_NAME, request_to_payload
from separation.errors import PoolBusyError, UserJobLimitError
from separation.jobs import SeparationRequest

_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'todo') AS queued,
       count(*) FILTER (WHERE args->>'user_ref' = %(user_ref)s) AS user_active
  FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status IN ('todo', 'doing')
"""


@dataclass(frozen=True)
class FrontendLimits:
    """The fleet-wide admission limits (the pool's settings, applied across front-ends)."""

    max_queued_jobs: int
    max_jobs_per_user: int
    retry_after_seconds: float = 300.0
    """What "busy" tells users when the queue is full (no fleet-wide speed estimate yet)."""
    poll_interval_seconds: float = 1.0
    result_max_age_seconds: float = 24 * 3600.0
    """``pool.cache_max_age_hours``: an older shared result is computed again, not served."""
    max_queued_renders: int = 10
    """``pool.max_queued_renders``: karaoke-control renders queued or running, fleet-wide."""
    render_timeout_seconds: float = 1800.0
    """``pool.job_timeout_seconds``: a render not done by then fails."""


class Admission:
    """One front-end's door to the queue, on a connection of its own for the lock."""

    def __init__(
        self,
        *,
        app: procrastinate.App,
        conninfo: str,
        queue_name: str,
        limits: FrontendLimits,
    ) -> None:
        self._app = app
        self._conninfo = conninfo
        self._queue_name = queue_name
        self._limits = limits
        self._lock = asyncio.Lock()
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        """Connect (autocommit): the advisory lock lives on this connection."""
        self._connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    async def close(self) -> None:
        """Close the lock's connection, if it was opened."""
        if self._connection is not None:
            await self._connection.close()

    async def admit_and_defer(self, job_id: str, request: SeparationRequest, lock: str) -> int:
        """Defer ``request`` if the limits let it in; return its queue job id.

        Raises:
            UserJobLimitError: the user has as many songs queued or running as allowed.
            PoolBusyError: the fleet's queue is full.
        """
        connection = self._connection
        assert connection is not None, "DistributedBackend.start() was not called"
        key = zlib.crc32(f"karaoke-admission:{self._queue_name}".encode())
        async with self._lock:
            await connection.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                rows = await fetch_all(
                    self._app, _COUNTS,
                    user_ref=request.user_ref, queue=self._queue_name, task=TASK_NAME,
                )  # fmt: skip
                queued, user_active = int(rows[0]["queued"]), int(rows[0]["user_active"])
                if user_active >= self._limits.max_jobs_per_user:
                    raise UserJobLimitError(limit=self._limits.max_jobs_per_user)
                if queued >= self._limits.max_queued_jobs:
                    raise PoolBusyError(retry_after_seconds=self._limits.retry_after_seconds)
                # Round-robin between users: each user's n-th waiting song gets priority
                # -n, and the queue takes the highest priority first (oldest first within).
                deferrer = self._app.configure_task(
                    name=TASK_NAME,
                    queue=self._queue_name,
                    priority=-user_active,
                    lock=lock,
                    queueing_lock=queueing_lock(job_id),
                )
                return await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def defer_again(self, job_id: str, request: SeparationRequest) -> int:
        """Queue a song once more (its cached result arrived damaged), past the limits:
        it was let in already."""
        deferrer = self._app.configure_task(
            name=TASK_NAME, queue=self._queue_name, queueing_lock=queueing_lock(job_id)
        )
        return await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
