"""The fleet as an operator sees it: the queue's jobs by state, the live workers, and
what ``/readyz`` asks of a front-end's queue and blob store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import procrastinate

from bot.distributed.blobs import BlobStore
from bot.distributed.queue import fetch_all

_BY_STATE = """
SELECT status::text AS state, count(*) AS jobs FROM procrastinate_jobs
 WHERE queue_name = %(queue)s GROUP BY status
"""
_WORKERS_ALIVE = """
SELECT count(*) AS alive FROM procrastinate_workers
 WHERE last_heartbeat > now() - make_interval(secs => %(seconds)s)
"""


async def queue_depth(app: procrastinate.App, queue_name: str) -> dict[str, int]:
    """The queue's jobs by state."""
    rows = await fetch_all(app, _BY_STATE, queue=queue_name)
    return {str(row["state"]): int(row["jobs"]) for row in rows}


async def workers_alive(app: procrastinate.App, stalled_after_seconds: float) -> int:
    """Workers whose heartbeat is recent (for readiness and metrics)."""
    rows = await fetch_all(app, _WORKERS_ALIVE, seconds=stalled_after_seconds)
    return int(rows[0]["alive"])


def fleet_readiness(
    app: procrastinate.App, blobs: BlobStore, count_workers: Callable[[], Awaitable[int]]
) -> dict[str, Callable[[], Awaitable[bool]]]:
    """What /readyz adds for a front-end: the queue answers, the blob store answers,
    and some worker is alive to take songs."""

    async def queue() -> bool:
        return bool(await app.job_manager.check_connection_async())

    async def blob_store() -> bool:
        await blobs.check()
        return True

    async def workers() -> bool:
        return await count_workers() > 0

    return {"queue": queue, "blob_store": blob_store, "workers_alive": workers}
