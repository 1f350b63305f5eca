"""Jobs: reserving one against the quota, moving it through its statuses, refunds.

Every function here runs inside a write transaction opened by the caller. A status change
loads the job with a row lock (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already holds the write lock) and checks the current status first, so a job can end only
once and its charge can be refunded only once.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

import storage.intake as intake
import storage.quotas as quotas
import storage.users as users
from storage.errors import (
    InvalidCacheKeyError,
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
    refused = quotas.refusal(row, status, charges, request.input_duration_seconds)
    if refused is not None:
        raise refused
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
        refused = quotas.refusal(user, status, others, decoded_seconds, admitted=True)
        if refused is not None:
            raise refused
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


async def latest_done_for_user(session: AsyncSession, user_id: int) -> Job | None:
    """The user's most recently finished song that has a result (``/video`` without a
    reply means it)."""
    return await session.scalar(
        select(Job)
        .where(
            Job.user_id == user_id,
            Job.status == JobStatus.DONE.value,
            Job.cache_key.is_not(None),
        )
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(1)
    )


async def all_active(session: AsyncSession, *, for_update: bool = False) -> list[Job]:
    query = select(Job).where(Job.status.in_(ACTIVE_STATUS_VALUES)).order_by(Job.id)
    if for_update:
        query = query.with_for_update()
    return list(await session.scalars(query))
