"""Jobs: reserving one against the quota, moving it through its statuses, refunds.

Every function here runs inside a write transaction opened by the caller. A status change
loads the job with a row lock (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already holds the write lock) and checks the current status first, so a job can end only
once and its charge can be refunded only once.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

import storage.intake as intake
import storage.quotas as quotas
import storage.users as users
from storage.errors import (
    InvalidCacheKeyError,
    InvalidDeliveryClaimError,
    JobNotFoundError,
    JobStateError,
)
from storage.models import Job, Usage, User, clip_to_column
from storage.order import StoredOrder
from storage.records import (
    ACTIVE_STATUS_VALUES,
    ACTIVE_STATUSES,
    ChatRef,
    JobRecord,
    JobRequest,
    JobStatus,
    QuotaLimits,
    UserRecord,
    is_control_token,
    new_control_token,
)

# Each status, and the statuses a job may reach it from.
_ALLOWED_FROM: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.QUEUED: (JobStatus.RUNNING,),  # requeued by recovery
    JobStatus.RUNNING: (JobStatus.QUEUED,),
    JobStatus.DONE: ACTIVE_STATUSES,
    JobStatus.FAILED: ACTIVE_STATUSES,
    JobStatus.CANCELLED: ACTIVE_STATUSES,
}

MAX_CACHE_KEY_LENGTH = 128
MAX_FRONTEND_ID_LENGTH = 64  # jobs.delivered_by
MAX_JOB_ID = 2**63 - 1
"""The largest id a query may carry: both drivers bind a Python int as a signed 64-bit
integer and fail on anything larger (no row has such an id anyway)."""

INTERRUPTED = "interrupted"
"""The error kind of a job that a previous process left unfinished without its input."""


def to_record(job: Job) -> JobRecord:
    return JobRecord(
        id=job.id,
        user_id=job.user_id,
        status=JobStatus(job.status),
        chat=ChatRef(
            chat_id=job.chat_id,
            guild_id=job.guild_id,
            channel_id=job.channel_id,
            message_id=job.message_id,
        ),
        input_sha256=job.input_sha256,
        input_duration_seconds=job.input_duration_seconds,
        input_size_bytes=job.input_size_bytes,
        original_filename=job.original_filename,
        input_path=Path(job.input_path) if job.input_path else None,
        model=job.model,
        order=StoredOrder.from_json(job.options),
        error_kind=job.error_kind,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cache_key=job.cache_key,
        cache_hit=job.cache_hit,
        attempt=job.attempt,
        queue_job_id=job.queue_job_id,
        delivered_by=job.delivered_by,
        delivery_lease_until=job.delivery_lease_until,
        control_token=job.control_token,
    )


async def reserve(
    session: AsyncSession,
    user: UserRecord,
    request: JobRequest,
    defaults: QuotaLimits,
    now: datetime,
) -> Job:
    """Check the user's quota and, if it allows, insert the queued job and its charge.

    Both rows are written in the caller's transaction, after the user row is locked, so
    concurrent requests from one user are decided one at a time; the song's intake record
    (``request.intake_id``) is removed in the same transaction.

    Raises:
        UserBannedError, SongTooLongError, TooManyConcurrentJobsError, QuotaExceededError:
            nothing is written.
        UserNotFoundError: the user does not exist.
    """
    row = await users.lock(session, user)
    limits = quotas.effective_limits(defaults, row)
    charges = await quotas.load_charges(session, row.id, now)
    active = await quotas.count_active_jobs(session, row.id)
    status = quotas.summarize(row, limits, charges, active)
    quotas.check_request(row, status, charges, request.input_duration_seconds)
    job = Job(
        user_id=row.id,
        chat_id=request.chat.chat_id,
        guild_id=request.chat.guild_id,
        channel_id=request.chat.channel_id,
        message_id=request.chat.message_id,
        input_sha256=request.input_sha256,
        input_duration_seconds=request.input_duration_seconds,
        input_size_bytes=request.input_size_bytes,
        original_filename=clip_to_column(request.original_filename, Job.original_filename),
        input_path=str(request.input_path) if request.input_path else None,
        model=request.model,
        options=request.order.to_json(),
        status=JobStatus.QUEUED.value,
        created_at=now,
        control_token=new_control_token(),
    )
    session.add(job)
    await session.flush()
    session.add(
        Usage(
            job_id=job.id,
            user_id=row.id,
            charged_at=now,
            songs=1,
            audio_seconds=request.input_duration_seconds,
        )
    )
    if request.intake_id is not None:  # the song now has its job: no longer "accepted"
        await intake.remove(session, request.intake_id)
    await session.flush()
    return job


# A decoded length within this of the charged one is rounding (encoder delay, padding),
# not a lying header: it is recorded but never turns an admitted song away.
SETTLE_TOLERANCE_SECONDS = 2.0
SETTLE_TOLERANCE_RATIO = 0.02


async def settle_duration(
    session: AsyncSession,
    job_id: int,
    decoded_seconds: float,
    defaults: QuotaLimits,
    now: datetime,
    *,
    enforce: bool,
) -> Job:
    """Charge an active job its decoded length instead of the length its header gave.

    With ``enforce``, a length clearly longer than charged is checked against the
    user's per-song limit and daily minutes (their other charges, this one replaced);
    a refusal writes nothing and the caller fails the job, which refunds it.

    Raises:
        SongTooLongError, QuotaExceededError: only with ``enforce``.
        JobNotFoundError, JobStateError: unknown, or already ended.
    """
    job = await lock(session, job_id)
    if not JobStatus(job.status).is_active:
        raise JobStateError(job_id=job.id, current=job.status, requested="settled")
    charged = job.input_duration_seconds
    tolerance = max(SETTLE_TOLERANCE_SECONDS, SETTLE_TOLERANCE_RATIO * charged)
    if enforce and decoded_seconds > charged + tolerance:
        user = await session.get(User, job.user_id, with_for_update=True, populate_existing=True)
        assert user is not None  # jobs.user_id is a foreign key
        charges = await quotas.load_charges(session, user.id, now)
        others = [charge for charge in charges if charge.job_id != job.id]
        limits = quotas.effective_limits(defaults, user)
        status = quotas.summarize(user, limits, others, active_jobs=0)
        quotas.check_settlement(status, others, decoded_seconds)
    job.input_duration_seconds = decoded_seconds
    await session.execute(
        update(Usage)
        .where(Usage.job_id == job_id)
        .values(audio_seconds=decoded_seconds)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return job


async def load(session: AsyncSession, job_id: int, *, for_update: bool = False) -> Job:
    """Load a job; ``for_update`` locks its row (PostgreSQL) for a status change.

    An id no row can have is not found rather than sent to the database, where one of
    2**63 or more was an OverflowError from the driver (issue 20).
    """
    if not 0 < job_id <= MAX_JOB_ID:
        raise JobNotFoundError(job_id=job_id)
    query = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    job = await session.scalar(query.with_for_update() if for_update else query)
    if job is None:
        raise JobNotFoundError(job_id=job_id)
    return job


async def load_by_control_token(session: AsyncSession, token: str) -> Job:
    """The job whose buttons carry ``token``; a string not of the token's form is not
    looked up."""
    if not is_control_token(token):
        raise JobNotFoundError(control_token=token)
    job = await session.scalar(select(Job).where(Job.control_token == token))
    if job is None:
        raise JobNotFoundError(control_token=token)
    return job


async def lock(session: AsyncSession, job_id: int) -> Job:
    """Load a job for a status change (see the module docstring)."""
    return await load(session, job_id, for_update=True)


def move(job: Job, status: JobStatus) -> None:
    """Set the job's status if the move is allowed.

    Raises:
        JobStateError: e.g. failing a job that is already done or cancelled.
    """
    if JobStatus(job.status) not in _ALLOWED_FROM[status]:
        raise JobStateError(job_id=job.id, current=job.status, requested=status.value)
    job.status = status.value


async def finish(
    session: AsyncSession,
    job_id: int,
    status: JobStatus,
    now: datetime,
    *,
    refund_reason: str | None,
    error_kind: str | None = None,
    cache_key: str | None = None,
    cache_hit: bool | None = None,
) -> tuple[Job, Path | None]:
    """End an active job as done, failed or cancelled, refunding it when asked.

    Returns the job and its saved upload, which the caller deletes once the transaction
    has committed.

    Raises:
        JobNotFoundError, JobStateError: unknown, or already ended.
    """
    if cache_key is not None and len(cache_key) > MAX_CACHE_KEY_LENGTH:
        raise InvalidCacheKeyError(value=cache_key, reason="longer than 128 characters")
    job = await lock(session, job_id)
    move(job, status)
    job.error_kind = clip_to_column(error_kind, Job.error_kind)
    job.cache_key = cache_key
    job.cache_hit = cache_hit
    job.finished_at = now
    upload = Path(job.input_path) if job.input_path else None
    job.input_path = None
    if refund_reason is not None:
        await refund(session, job_id, now, reason=refund_reason)
    await session.flush()
    return job, upload


async def refund(session: AsyncSession, job_id: int, now: datetime, reason: str) -> bool:
    """Give the job's charge back, once. Returns False when it was already refunded."""
    result = await session.execute(
        update(Usage)
        .where(Usage.job_id == job_id, Usage.refunded_at.is_(None))
        .values(refunded_at=now, refund_reason=reason)
        .execution_options(synchronize_session=False)
    )
    # An UPDATE's result is a CursorResult, the kind that counts rows (the async session's
    # ``execute`` is typed with the generic Result whatever the statement).
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount == 1


async def active_for_user(session: AsyncSession, user_id: int) -> list[Job]:
    rows = await session.scalars(
        select(Job)
        .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUS_VALUES))
        .order_by(Job.id)
    )
    return list(rows)


async def all_active(session: AsyncSession, *, for_update: bool = False) -> list[Job]:
    query = select(Job).where(Job.status.in_(ACTIVE_STATUS_VALUES)).order_by(Job.id)
    if for_update:
        query = query.with_for_update()
    return list(await session.scalars(query))


# The distributed backend: workers on other hosts run the jobs, and each job's result is
# delivered to its chat by one front-end process, the one holding its delivery lease.
# A front-end claims a job (compare-and-set in one UPDATE, so of two racing front-ends
# exactly one wins), renews its leases while it runs, and on a clean shutdown releases
# them. A release ends the lease at once but keeps ``delivered_by``: the job is then an
# orphan like one whose front-end died, and any front-end of its platform can claim it.
# Jobs no front-end ever claimed (the local backend's) have ``delivered_by`` NULL and
# are never reported as orphans; their process delivers them and ``recovery`` restarts
# them. Times come from the store's clock like every other time the store keeps, so
# leases should be long compared with the clock skew between hosts.


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
    # An UPDATE's result is a CursorResult (see ``refund``).
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount
