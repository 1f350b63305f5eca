"""Delivery leases: which front-end delivers each job of the distributed backend.

In the distributed backend, workers on other hosts run the jobs, and each job's result is
delivered to its chat by one front-end process, the one holding its delivery lease.
A front-end claims a job (compare-and-set in one UPDATE, so of two racing front-ends
exactly one wins), renews its leases while it runs, and on a clean shutdown releases
them. A release ends the lease at once but keeps ``delivered_by``: the job is then an
orphan like one whose front-end died, and any front-end of its platform can claim it.
Jobs no front-end ever claimed (the local backend's) have ``delivered_by`` NULL and
are never reported as orphans; their process delivers them and ``recovery`` restarts
them. Times come from the store's clock like every other time the store keeps, so
leases should be long compared with the clock skew between hosts.

Every function runs inside a transaction opened by the caller (``storage.store``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidDeliveryClaimError
from storage.jobs import load
from storage.models import Job, User
from storage.records import ACTIVE_STATUS_VALUES

MAX_FRONTEND_ID_LENGTH = 64  # jobs.delivered_by


def set_queue_job(job: Job, queue_job_id: int) -> None:
    """Record the procrastinate job carrying ``job``; a requeue replaces the old id."""
    job.queue_job_id = queue_job_id


def record_attempt(job: Job, attempt: int | None = None) -> int:
    """Count one more start by a worker, or raise the count to ``attempt`` (on a locked
    row); return the new count."""
    job.attempt = job.attempt + 1 if attempt is None else max(job.attempt, attempt)
    return job.attempt


def check_claim(frontend_id: str, lease_seconds: float | None = None) -> timedelta | None:
    """Refuse a front-end id or a lease the columns cannot hold or that means nothing.

    Raises:
        InvalidDeliveryClaimError: an empty or too long id, or a lease that is not a
            finite number of seconds above zero.
    """
    if not 0 < len(frontend_id) <= MAX_FRONTEND_ID_LENGTH:
        reason = f"must have 1 to {MAX_FRONTEND_ID_LENGTH} characters"
        raise InvalidDeliveryClaimError(field="front-end id", value=frontend_id, reason=reason)
    if lease_seconds is None:
        return None
    if not math.isfinite(lease_seconds) or lease_seconds <= 0:
        raise InvalidDeliveryClaimError(
            field="lease", value=lease_seconds, reason="must be a finite number of seconds > 0"
        )
    return timedelta(seconds=lease_seconds)


def _lease_over(now: datetime) -> ColumnElement[bool]:
    # A NULL lease next to a deliverer is not written by this module, but would
    # otherwise hold the job forever; count it as over.
    return or_(Job.delivery_lease_until.is_(None), Job.delivery_lease_until <= now)


async def claim_delivery(
    session: AsyncSession, job_id: int, frontend_id: str, now: datetime, lease: timedelta
) -> bool:
    """Make ``frontend_id`` the job's deliverer until ``now + lease``, if nobody else is.

    One UPDATE whose WHERE is the whole condition: the job is queued or running, and
    it has no deliverer, or this one, or one whose lease is over. PostgreSQL re-checks
    the WHERE on the row a concurrent winner left, and SQLite runs writers one at a
    time, so two front-ends racing for a job never both win.

    Raises:
        JobNotFoundError: no such job (a job that exists but is not claimable is False).
    """
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_(ACTIVE_STATUS_VALUES),
            or_(
                Job.delivered_by.is_(None),
                Job.delivered_by == frontend_id,
                _lease_over(now),
            ),
        )
        .values(delivered_by=frontend_id, delivery_lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) == 1:
        return True
    await load(session, job_id)  # raises JobNotFoundError for an unknown id
    return False


async def renew_deliveries(
    session: AsyncSession, frontend_id: str, now: datetime, lease: timedelta
) -> int:
    """Extend to ``now + lease`` every lease ``frontend_id`` holds on an unfinished job.

    A job another front-end took over (after this one's lease ran out) has another
    deliverer and is not renewed. Returns how many leases were extended.
    """
    result = await session.execute(
        update(Job)
        .where(Job.delivered_by == frontend_id, Job.status.in_(ACTIVE_STATUS_VALUES))
        .values(delivery_lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def release_delivery(
    session: AsyncSession, job_id: int, frontend_id: str, now: datetime
) -> bool:
    """End ``frontend_id``'s lease on the job now (see above); False if it held none."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.delivered_by == frontend_id)
        .values(delivery_lease_until=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def orphaned_deliveries(
    session: AsyncSession, platform: str, now: datetime, *, also_held_by: str | None = None
) -> list[Job]:
    """Unfinished jobs of ``platform``'s users whose deliverer's lease is over, oldest first;
    with ``also_held_by``, also those that front-end still holds (its own, after a restart).

    Only claimed jobs (``delivered_by`` set) count: a front-end serves one platform, and
    the jobs of the local backend, never claimed, belong to their own process.
    """
    taken_over = _lease_over(now)
    if also_held_by is not None:
        taken_over = or_(taken_over, Job.delivered_by == also_held_by)
    rows = await session.scalars(
        select(Job)
        .join(User, User.id == Job.user_id)
        .where(
            User.platform == platform,
            Job.status.in_(ACTIVE_STATUS_VALUES),
            Job.delivered_by.is_not(None),
            taken_over,
        )
        .order_by(Job.id)
    )
    return list(rows)


def _rowcount(result: object) -> int:
    # An UPDATE's result is a CursorResult, the kind that counts rows (see
    # ``storage.jobs.refund``).
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount
