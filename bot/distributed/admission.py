"""Letting a song into the fleet's queue: the limits checked and the job deferred at once.

Admission (the queue limit, the per-user limit, round-robin priorities) is decided under
a PostgreSQL advisory lock held across the count and the insert, so two front-ends
cannot both let in the song that fills the queue.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import procrastinate
import psycopg

from bot.distributed.queue import fetch_all
from bot.distributed.wire import TASK_NAME, request_to_payload
from separation.errors import PoolBusyError, UserJobLimitError
from separation.jobs import SeparationRequest

_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'todo') AS queued,
       count(*) FILTER (WHERE args->>'user_ref' = %(user_ref)s) AS user_active
  FROM procrastinate_jobs
 WHERE queue_name = %(queue)s AND task_name = %(task)s AND status IN ('todo', 'doing')
"""


class Admission:
    """One front-end's door to the queue, on a connection of its own for the lock."""

    def __init__(
        self,
        *,
        app: procrastinate.App,
        conninfo: str,
        queue_name: str,
        max_jobs_per_user: int,
        max_queued_jobs: int,
        retry_after_seconds: float,
    ) -> None:
        self._app = app
        self._conninfo = conninfo
        self._queue_name = queue_name
        self._max_jobs_per_user = max_jobs_per_user
        self._max_queued_jobs = max_queued_jobs
        self._retry_after_seconds = retry_after_seconds
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
                if user_active >= self._max_jobs_per_user:
                    raise UserJobLimitError(limit=self._max_jobs_per_user)
                if queued >= self._max_queued_jobs:
                    raise PoolBusyError(retry_after_seconds=self._retry_after_seconds)
                # Round-robin between users: each user's n-th waiting song gets priority
                # -n, and the queue takes the highest priority first (oldest first within).
                deferrer = self._app.configure_task(
                    name=TASK_NAME,
                    queue=self._queue_name,
                    priority=-user_active,
                    lock=lock,
                    queueing_lock=f"job:{job_id}",
                )
                return await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def defer_again(self, job_id: str, request: SeparationRequest) -> int:
        """Queue a song once more (its cached result arrived damaged), past the limits:
        it was let in already."""
        deferrer = self._app.configure_task(
            name=TASK_NAME, queue=self._queue_name, queueing_lock=f"job:{job_id}"
        )
        return await deferrer.defer_async(**request_to_payload(request, job_id=job_id))
