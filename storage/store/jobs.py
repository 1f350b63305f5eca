"""``store.jobs``: a song's job from its reservation against the quota to its end."""

from __future__ import annotations

from datetime import datetime

import storage.deliveries as deliveries
import storage.jobs as jobs
from storage.errors import InvalidDeliveryClaimError
from storage.records import JobRecord, JobRequest, JobStatus, QuotaLimits, UserRecord
from storage.store.context import StoreContext


class Jobs:
    """Reserve, settle, run and finish jobs; every end refunds as it should, once."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def reserve(
        self,
        user: UserRecord,
        request: JobRequest,
        limits: QuotaLimits,
        *,
        delivered_by: str | None = None,
        lease_seconds: float | None = None,
        now: datetime | None = None,
    ) -> JobRecord:
        """Atomically check the user's quota and create the queued job and its charge.

        ``limits`` are the platform defaults; the user's current overrides, admin and
        banned flags are read from the database inside the same transaction, and
        :func:`storage.quotas.refusal` decides. With ``delivered_by`` (a distributed
        front-end's id) the job is created claimed by it for ``lease_seconds`` (see
        :meth:`storage.store.deliveries.Deliveries.claim`), in the same transaction: a
        front-end killed right after the reservation leaves a job its restart, or another
        front-end after the lease, takes over, never one nobody delivers.

        Raises:
            UserBannedError, SongTooLongError, TooManyConcurrentJobsError,
            QuotaExceededError: refused; nothing is reserved.
            InvalidDeliveryClaimError: ``delivered_by`` without a usable lease.
        """
        lease = None
        if delivered_by is not None:
            lease = deliveries.check_claim(delivered_by, lease_seconds)
            if lease is None:
                raise InvalidDeliveryClaimError(
                    field="lease", value=lease_seconds, reason="required with a deliverer"
                )
        now = self._context.now(now)
        async with self._db.write() as session:
            job = await jobs.reserve(session, user, request, limits, now)
            if delivered_by is not None and lease is not None:
                job.delivered_by, job.delivery_lease_until = delivered_by, now + lease
                await session.flush()
            return jobs.to_record(job)

    async def settle_duration(
        self,
        job_id: int,
        decoded_seconds: float,
        limits: QuotaLimits,
        *,
        enforce: bool = True,
        now: datetime | None = None,
    ) -> JobRecord:
        """Charge the job its decoded length (a header may lie or say nothing).

        ``limits`` are the platform defaults, as for :meth:`reserve`. With ``enforce``, a
        song clearly longer than charged must still fit the user's per-song limit and
        daily minutes.

        Raises:
            SongTooLongError, QuotaExceededError: it does not fit; nothing changed (fail
                the job, which refunds it).
            JobNotFoundError, JobStateError: the job is unknown or already finished.
        """
        async with self._db.write() as session:
            job = await jobs.settle_duration(
                session, job_id, decoded_seconds, limits, self._context.now(now), enforce=enforce
            )
            return jobs.to_record(job)

    async def get(self, job_id: int) -> JobRecord:
        """Raises: JobNotFoundError."""
        async with self._db.read() as session:
            return jobs.to_record(await jobs.load(session, job_id))

    async def get_by_control_token(self, token: str) -> JobRecord:
        """The job whose karaoke buttons carry ``token``.

        Raises:
            JobNotFoundError: no such job, or ``token`` is not of a token's form.
        """
        async with self._db.read() as session:
            return jobs.to_record(await jobs.load_by_control_token(session, token))

    async def active(self, user: UserRecord) -> list[JobRecord]:
        """The user's queued and running jobs, oldest first."""
        async with self._db.read() as session:
            return [jobs.to_record(job) for job in await jobs.active_for_user(session, user.id)]

    async def latest_done(self, user: UserRecord) -> JobRecord | None:
        """The user's most recently finished song with a result; None if they have none."""
        async with self._db.read() as session:
            job = await jobs.latest_done_for_user(session, user.id)
            return jobs.to_record(job) if job is not None else None

    async def mark_running(self, job_id: int, *, now: datetime | None = None) -> JobRecord:
        """Raises: JobNotFoundError, JobStateError (not queued)."""
        async with self._db.write() as session:
            job = await jobs.lock(session, job_id)
            jobs.move(job, JobStatus.RUNNING)
            job.started_at = self._context.now(now)
            await session.flush()
            return jobs.to_record(job)

    async def mark_done(
        self,
        job_id: int,
        cache_key: str | None = None,
        cache_hit: bool = False,
        *,
        now: datetime | None = None,
    ) -> JobRecord:
        """Finish a job and delete its upload.

        ``cache_key``: the key of the result's cache entry, when the caller knows it
        (kept for the record only; nothing is looked up by it). ``cache_hit``: the result
        came from the cache; it is refunded when the store was opened with
        ``cache_hits_are_free``.

        Raises:
            JobNotFoundError, JobStateError: the job is unknown or already finished.
        """
        free = cache_hit and self._context.cache_hits_are_free
        return await self._finish(
            job_id,
            JobStatus.DONE,
            now,
            refund_reason="cache_hit" if free else None,
            cache_key=cache_key,
            cache_hit=cache_hit,
        )

    async def mark_failed(
        self, job_id: int, error_kind: str, *, now: datetime | None = None
    ) -> JobRecord:
        """Fail a job, refund its charge and delete its upload.

        Raises:
            JobNotFoundError, JobStateError: the job is unknown or already finished, so
                it is never refunded twice.
        """
        return await self._finish(
            job_id, JobStatus.FAILED, now, refund_reason="failed", error_kind=error_kind
        )

    async def mark_cancelled(self, job_id: int, *, now: datetime | None = None) -> JobRecord:
        """Cancel a job, refund its charge and delete its upload.

        Raises:
            JobNotFoundError, JobStateError: the job is unknown or already finished.
        """
        return await self._finish(job_id, JobStatus.CANCELLED, now, refund_reason="cancelled")

    async def _finish(
        self,
        job_id: int,
        status: JobStatus,
        now: datetime | None,
        *,
        refund_reason: str | None,
        error_kind: str | None = None,
        cache_key: str | None = None,
        cache_hit: bool | None = None,
    ) -> JobRecord:
        async with self._db.write() as session:
            job, upload = await jobs.finish(
                session,
                job_id,
                status,
                self._context.now(now),
                refund_reason=refund_reason,
                error_kind=error_kind,
                cache_key=cache_key,
                cache_hit=cache_hit,
            )
            record = jobs.to_record(job)
        # Only once the outcome is committed: a crash in between leaves an orphan
        # upload for retention, never a finished job whose input is needed again.
        if upload is not None:
            await self._context.delete_upload(upload)
        return record
