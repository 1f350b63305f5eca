"""``store.deliveries``: the distributed backend's queue ids, attempts and delivery leases.

Which front-end delivers each job's result, and how a job left by a dead or stopped
front-end is taken over (see :mod:`storage.deliveries` for the rules of a lease).
"""

from __future__ import annotations

from datetime import datetime

import storage.deliveries as deliveries
import storage.jobs as jobs
import storage.users as users
from storage.models import User
from storage.records import JobRecord, RecoveredJob, RecoveryAction
from storage.store.context import StoreContext


class Deliveries:
    """Queue ids, attempts and the delivery lease of each job on the distributed backend."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def set_queue_job(self, job_id: int, queue_job_id: int) -> None:
        """Remember the procrastinate job that carries this job (to cancel or inspect it).

        Raises:
            JobNotFoundError: the job is unknown.
        """
        async with self._db.write() as session:
            deliveries.set_queue_job(await jobs.lock(session, job_id), queue_job_id)
            await session.flush()

    async def record_attempt(self, job_id: int, attempt: int | None = None) -> int:
        """Count a worker's start of the job; returns the new count (1 on the first start).

        With ``attempt`` (the queue's own count, as a front-end hears of it), the count
        becomes that number unless it is already higher: a missed or repeated notice
        never makes it wrong.

        Raises:
            JobNotFoundError: the job is unknown.
        """
        async with self._db.write() as session:
            recorded = deliveries.record_attempt(await jobs.lock(session, job_id), attempt)
            await session.flush()
            return recorded

    async def claim(
        self,
        job_id: int,
        frontend_id: str,
        lease_seconds: float,
        *,
        now: datetime | None = None,
    ) -> bool:
        """Become the front-end that delivers this job's result, for ``lease_seconds``.

        Succeeds (True) when the job is queued or running and nobody else holds its
        delivery: no front-end ever claimed it, ``frontend_id`` already does (a renewal),
        or the holder's lease is over. Atomic: of front-ends racing for one job, exactly
        one wins. A finished job, or one another front-end holds, gives False.

        Raises:
            InvalidDeliveryClaimError: an empty or over-long id, or a lease <= 0 s.
            JobNotFoundError: the job is unknown.
        """
        lease = deliveries.check_claim(frontend_id, lease_seconds)
        assert lease is not None
        async with self._db.write() as session:
            return await deliveries.claim_delivery(
                session, job_id, frontend_id, self._context.now(now), lease
            )

    async def renew(
        self, frontend_id: str, lease_seconds: float, *, now: datetime | None = None
    ) -> int:
        """Extend every lease ``frontend_id`` holds on an unfinished job; returns how many.

        A front-end calls this well within its lease (a third of it, say): a job whose
        lease ran out and that another front-end claimed is no longer its own, and is
        not counted.

        Raises:
            InvalidDeliveryClaimError: an empty or over-long id, or a lease <= 0 s.
        """
        lease = deliveries.check_claim(frontend_id, lease_seconds)
        assert lease is not None
        async with self._db.write() as session:
            return await deliveries.renew_deliveries(
                session, frontend_id, self._context.now(now), lease
            )

    async def release(self, job_id: int, frontend_id: str, *, now: datetime | None = None) -> None:
        """Give up the job's delivery on a clean shutdown, so another front-end takes over.

        The lease ends ``now``: the job shows up in :meth:`orphaned` at once, and any
        front-end can claim it. Nothing happens when ``frontend_id`` does not hold it
        (any more).

        Raises:
            InvalidDeliveryClaimError: an empty or over-long id.
        """
        deliveries.check_claim(frontend_id)
        async with self._db.write() as session:
            await deliveries.release_delivery(session, job_id, frontend_id, self._context.now(now))

    async def orphaned(self, platform: str, now: datetime | None = None) -> list[JobRecord]:
        """Unfinished jobs of ``platform``'s users whose deliverer's lease is over.

        These are what a front-end takes over (with :meth:`claim`) after another one
        died or shut down. Only jobs some front-end claimed are reported: a job never
        claimed (``delivered_by`` empty, e.g. the local backend's) belongs to the
        process that created it.
        """
        async with self._db.read() as session:
            found = await deliveries.orphaned_deliveries(session, platform, self._context.now(now))
            return [jobs.to_record(job) for job in found]

    async def to_take_over(
        self, platform: str, *, holder: str, own_too: bool = False, now: datetime | None = None
    ) -> list[RecoveredJob]:
        """The orphaned deliveries of ``platform`` (see :meth:`orphaned`) with their users,
        for ``holder`` to resume; ``own_too`` adds the jobs ``holder`` still holds (on its
        start, they were left by its previous run)."""
        async with self._db.read() as session:
            found = await deliveries.orphaned_deliveries(
                session,
                platform,
                self._context.now(now),
                also_held_by=holder if own_too else None,
            )
            return [
                RecoveredJob(
                    job=jobs.to_record(job),
                    user=users.to_record(await session.get_one(User, job.user_id)),
                    action=RecoveryAction.REQUEUED,
                )
                for job in found
            ]
