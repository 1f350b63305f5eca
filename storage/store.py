"""The store's facade: everything the bot must remember, behind one async object.

Usage::

    store = await Store.open(settings.database_url, settings.general.data_dir)
    try:
        for recovered in await store.recover_interrupted():
            ...  # requeue or tell the user
        user = await store.upsert_user("telegram", "12345", "Alice")
        job = await store.reserve_job(user, request, limits)  # may raise a quota error
        await store.mark_running(job.id)
        await store.mark_done(job.id, cache_hit=False)
    finally:
        await store.close()

Every method opens its own short session, so concurrent tasks never share one, and
returns frozen dataclasses from :mod:`storage.records`, never ORM objects. Methods take
an optional ``now`` (timezone-aware) so tests can move through the 24 h window without
sleeping; otherwise the store's clock is used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.engine import URL

import storage.intake as intake
import storage.jobs as jobs
import storage.quotas as quotas
import storage.recovery as recovery
import storage.retention as retention
import storage.stats as stats
import storage.users as users
from storage.db import Database, open_database
from storage.errors import DatabaseOpenError, InvalidDeliveryClaimError
from storage.files import FileStore
from storage.intake import IntakeRecord, IntakeRequest
from storage.migrate import upgrade
from storage.models import User
from storage.records import (
    CleanupReport,
    Clock,
    JobRecord,
    JobRequest,
    JobStatus,
    QuotaLimits,
    QuotaStatus,
    RecoveredJob,
    RecoveryAction,
    Stats,
    UserRecord,
    as_utc,
    utc_now,
)

logger = logging.getLogger(__name__)


class Store:
    """Users, jobs, quotas and uploads. Create with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        database: Database,
        files: FileStore,
        *,
        cache_hits_are_free: bool,
        clock: Clock,
    ) -> None:
        self._db = database
        self.files = files
        self._cache_hits_are_free = cache_hits_are_free
        self._clock = clock

    @classmethod
    async def open(
        cls,
        url: str | URL,
        data_dir: Path,
        *,
        cache_hits_are_free: bool = True,
        busy_timeout_seconds: float = 30.0,
        serialize_sqlite_writes: bool = True,
        migrate: bool = True,
        clock: Clock = utc_now,
        connect_args: Mapping[str, Any] | None = None,
    ) -> Store:
        """Connect, create the data folders and (by default) apply pending migrations.

        Args:
            url: any async SQLAlchemy URL, e.g. ``sqlite+aiosqlite:///data/karaoke.db`` or
                ``postgresql+asyncpg://user@host/db``.
            data_dir: uploads are kept below it (results live in the separation cache).
            cache_hits_are_free: refund a job whose result came from the cache.
            busy_timeout_seconds: how long a SQLite writer waits for another one.
            serialize_sqlite_writes: queue this process's SQLite writers in Python
                rather than on the file lock (see :mod:`storage.db`).
            migrate: upgrade the schema to the newest revision first.
            connect_args: passed to the driver (e.g. asyncpg ``server_settings``).

        Raises:
            DatabaseOpenError: the database is unreachable, not a database, or its
                schema cannot be upgraded.
            DataDirError: the data directory cannot be created or written.
        """
        database = open_database(
            url,
            busy_timeout_seconds=busy_timeout_seconds,
            serialize_writes=serialize_sqlite_writes,
            connect_args=connect_args,
        )
        store = cls(
            database,
            FileStore(data_dir),
            cache_hits_are_free=cache_hits_are_free,
            clock=clock,
        )
        try:
            await store.files.prepare()
            if migrate:
                await store.upgrade_schema()
            else:
                async with database.errors(DatabaseOpenError), database.read() as session:
                    await session.connection()
        except BaseException:
            await database.close()
            raise
        return store

    async def upgrade_schema(self) -> tuple[str | None, str | None]:
        """Apply pending migrations; return the schema revision before and after.

        Raises:
            DatabaseOpenError: not a database, unreachable, or at a revision this code
                does not know (a newer bot ran on it).
        """
        async with self._db.errors(DatabaseOpenError):
            return await upgrade(self._db)

    @property
    def database_url(self) -> str:
        """The database URL with any password hidden."""
        return self._db.display_url

    async def close(self) -> None:
        await self._db.close()

    def _now(self, now: datetime | None) -> datetime:
        return as_utc(now if now is not None else self._clock())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> bool:
        """True when the database answers a trivial query (for readiness probes)."""
        try:
            async with self._db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the probe reports it
            return False
        return True

    # Users

    async def upsert_user(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str,
        *,
        now: datetime | None = None,
    ) -> UserRecord:
        """Record that a user was seen: create on first sight, else refresh name and time.

        Raises:
            InvalidUserRefError: unknown platform or unusable id.
        """
        async with self._db.write() as session:
            user = await users.upsert(
                session, platform, platform_user_id, display_name, self._now(now)
            )
            await session.flush()
            return users.to_record(user)

    async def get_user(self, platform: str, platform_user_id: str) -> UserRecord:
        """Raises: UserNotFoundError."""
        async with self._db.read() as session:
            return users.to_record(await users.get(session, platform, platform_user_id))

    async def find_user(self, ref: str) -> UserRecord:
        """Look a user up by ``PLATFORM:ID`` as typed by an admin.

        Raises:
            InvalidUserRefError: the reference is malformed.
            UserNotFoundError: no such user.
        """
        return await self.get_user(*users.parse_user_ref(ref))

    async def find_or_create_user(self, ref: str, *, now: datetime | None = None) -> UserRecord:
        """The user an admin names by ``PLATFORM:ID``, created if never seen.

        An operator may ban an abuser or grant a friend before they first write; the
        user is then created with an empty display name (filled in when they write).

        Raises:
            InvalidUserRefError: a malformed reference, e.g. ``telegram:abc``.
        """
        platform, platform_user_id = users.parse_admin_ref(ref)
        async with self._db.write() as session:
            user = await users.find_or_create(session, platform, platform_user_id, self._now(now))
            await session.flush()
            return users.to_record(user)

    async def find_chat_user(self, ref: str) -> UserRecord:
        """Look a user up by ``PLATFORM:ID``, checked like :meth:`find_or_create_user`.

        Raises:
            InvalidUserRefError: a malformed reference, e.g. ``telegram:abc``.
            UserNotFoundError: no such user.
        """
        return await self.get_user(*users.parse_admin_ref(ref))

    async def grant(
        self,
        user: UserRecord,
        *,
        songs_per_day: int | None = None,
        audio_minutes_per_day: float | None = None,
        max_song_minutes: float | None = None,
        max_concurrent_jobs: int | None = None,
    ) -> UserRecord:
        """Override some of a user's limits (``None`` leaves a limit as it is).

        Raises:
            InvalidGrantError: a negative or otherwise impossible value; nothing changes.
        """
        async with self._db.write() as session:
            row = await users.lock(session, user)
            users.apply_overrides(
                row,
                songs_per_day=songs_per_day,
                audio_minutes_per_day=audio_minutes_per_day,
                max_song_minutes=max_song_minutes,
                max_concurrent_jobs=max_concurrent_jobs,
            )
            await session.flush()
            return users.to_record(row)

    async def reset_limits(self, user: UserRecord) -> UserRecord:
        """Drop all of a user's overrides, back to the platform defaults."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            users.clear_overrides(row)
            await session.flush()
            return users.to_record(row)

    async def set_banned(self, user: UserRecord, banned: bool) -> UserRecord:
        """Ban or unban; a banned user's new jobs are refused (running ones go on)."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            row.is_banned = banned
            await session.flush()
            return users.to_record(row)

    async def set_admin(self, user: UserRecord, admin: bool) -> UserRecord:
        """Grant or revoke admin rights (admins have no quota limits)."""
        async with self._db.write() as session:
            row = await users.lock(session, user)
            row.is_admin = admin
            await session.flush()
            return users.to_record(row)

    # Quotas and jobs

    async def reserve_job(
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
        banned flags are read from the database inside the same transaction. With
        ``delivered_by`` (a distributed front-end's id) the job is created claimed by it
        for ``lease_seconds`` (see :meth:`claim_delivery`), in the same transaction: a
        front-end killed right after the reservation leaves a job its restart, or another
        front-end after the lease, takes over, never one nobody delivers.

        Raises:
            UserBannedError, SongTooLongError, TooManyConcurrentJobsError,
            QuotaExceededError: refused; nothing is reserved.
            InvalidDeliveryClaimError: ``delivered_by`` without a usable lease.
        """
        lease = None if delivered_by is None else jobs.check_claim(delivered_by, lease_seconds)
        if delivered_by is not None and lease is None:
            raise InvalidDeliveryClaimError(
                field="lease", value=lease_seconds, reason="required with a deliverer"
            )
        now = self._now(now)
        async with self._db.write() as session:
            job = await jobs.reserve(session, user, request, limits, now)
            if delivered_by is not None and lease is not None:
                job.delivered_by, job.delivery_lease_until = delivered_by, now + lease
                await session.flush()
            return jobs.to_record(job)

    async def quota_status(
        self, user: UserRecord, limits: QuotaLimits, *, now: datetime | None = None
    ) -> QuotaStatus:
        """What the user has used and has left in the rolling 24 h window ending ``now``."""
        async with self._db.read() as session:
            row = await users.load(session, user)
            charges = await quotas.load_charges(session, row.id, self._now(now))
            active = await quotas.count_active_jobs(session, row.id)
            return quotas.summarize(row, quotas.effective_limits(limits, row), charges, active)

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

        ``limits`` are the platform defaults, as for :meth:`reserve_job`. With
        ``enforce``, a song clearly longer than charged must still fit the user's
        per-song limit and daily minutes.

        Raises:
            SongTooLongError, QuotaExceededError: it does not fit; nothing changed (fail
                the job, which refunds it).
            JobNotFoundError, JobStateError: the job is unknown or already finished.
        """
        async with self._db.write() as session:
            job = await jobs.settle_duration(
                session, job_id, decoded_seconds, limits, self._now(now), enforce=enforce
            )
            return jobs.to_record(job)

    async def get_job(self, job_id: int) -> JobRecord:
        """Raises: JobNotFoundError."""
        async with self._db.read() as session:
            return jobs.to_record(await jobs.load(session, job_id))

    async def get_job_by_control_token(self, token: str) -> JobRecord:
        """The job whose karaoke buttons carry ``token``.

        Raises:
            JobNotFoundError: no such job, or ``token`` is not of a token's form.
        """
        async with self._db.read() as session:
            return jobs.to_record(await jobs.load_by_control_token(session, token))

    async def active_jobs(self, user: UserRecord) -> list[JobRecord]:
        """The user's queued and running jobs, oldest first."""
        async with self._db.read() as session:
            return [jobs.to_record(job) for job in await jobs.active_for_user(session, user.id)]

    async def mark_running(self, job_id: int, *, now: datetime | None = None) -> JobRecord:
        """Raises: JobNotFoundError, JobStateError (not queued)."""
        async with self._db.write() as session:
            job = await jobs.lock(session, job_id)
            jobs.move(job, JobStatus.RUNNING)
            job.started_at = self._now(now)
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
        free = cache_hit and self._cache_hits_are_free
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
                self._now(now),
                refund_reason=refund_reason,
                error_kind=error_kind,
                cache_key=cache_key,
                cache_hit=cache_hit,
            )
            record = jobs.to_record(job)
        # Only once the outcome is committed: a crash in between leaves an orphan
        # upload for retention, never a finished job whose input is needed again.
        if upload is not None:
            await self._delete_upload(upload)
        return record

    async def _delete_upload(self, path: Path) -> None:
        try:
            await self.files.delete_upload(path)
        except OSError as exc:
            # Retention removes orphaned uploads later; the job's outcome stands.
            logger.warning("could not delete upload %s: %s", path, exc)

    # The distributed backend: queue ids, attempts and who delivers each result

    async def set_queue_job(self, job_id: int, queue_job_id: int) -> None:
        """Remember the procrastinate job that carries this job (to cancel or inspect it).

        Raises:
            JobNotFoundError: the job is unknown.
        """
        async with self._db.write() as session:
            jobs.set_queue_job(await jobs.lock(session, job_id), queue_job_id)
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
            recorded = jobs.record_attempt(await jobs.lock(session, job_id), attempt)
            await session.flush()
            return recorded

    async def claim_delivery(
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
        lease = jobs.check_claim(frontend_id, lease_seconds)
        assert lease is not None
        async with self._db.write() as session:
            return await jobs.claim_delivery(session, job_id, frontend_id, self._now(now), lease)

    async def renew_deliveries(
        self, frontend_id: str, lease_seconds: float, *, now: datetime | None = None
    ) -> int:
        """Extend every lease ``frontend_id`` holds on an unfinished job; returns how many.

        A front-end calls this well within its lease (a third of it, say): a job whose
        lease ran out and that another front-end claimed is no longer its own, and is
        not counted.

        Raises:
            InvalidDeliveryClaimError: an empty or over-long id, or a lease <= 0 s.
        """
        lease = jobs.check_claim(frontend_id, lease_seconds)
        assert lease is not None
        async with self._db.write() as session:
            return await jobs.renew_deliveries(session, frontend_id, self._now(now), lease)

    async def release_delivery(
        self, job_id: int, frontend_id: str, *, now: datetime | None = None
    ) -> None:
        """Give up the job's delivery on a clean shutdown, so another front-end takes over.

        The lease ends ``now``: the job shows up in :meth:`orphaned_deliveries` at once,
        and any front-end can claim it. Nothing happens when ``frontend_id`` does not
        hold it (any more).

        Raises:
            InvalidDeliveryClaimError: an empty or over-long id.
        """
        jobs.check_claim(frontend_id)
        async with self._db.write() as session:
            await jobs.release_delivery(session, job_id, frontend_id, self._now(now))

    async def orphaned_deliveries(
        self, platform: str, now: datetime | None = None
    ) -> list[JobRecord]:
        """Unfinished jobs of ``platform``'s users whose deliverer's lease is over.

        These are what a front-end takes over (with :meth:`claim_delivery`) after
        another one died or shut down. Only jobs some front-end claimed are reported:
        a job never claimed (``delivered_by`` empty, e.g. the local backend's) belongs
        to the process that created it.
        """
        async with self._db.read() as session:
            found = await jobs.orphaned_deliveries(session, platform, self._now(now))
            return [jobs.to_record(job) for job in found]

    async def deliveries_to_take_over(
        self, platform: str, *, holder: str, own_too: bool = False, now: datetime | None = None
    ) -> list[RecoveredJob]:
        """The orphaned deliveries of ``platform`` (see :meth:`orphaned_deliveries`) with
        their users, for ``holder`` to resume; ``own_too`` adds the jobs ``holder`` still
        holds (on its start, they were left by its previous run)."""
        async with self._db.read() as session:
            found = await jobs.orphaned_deliveries(
                session, platform, self._now(now), also_held_by=holder if own_too else None
            )
            return [
                RecoveredJob(
                    job=jobs.to_record(job),
                    user=users.to_record(await session.get_one(User, job.user_id)),
                    action=RecoveryAction.REQUEUED,
                )
                for job in found
            ]

    # Songs accepted before their job exists (storage.intake)

    async def accept_song(
        self,
        platform: str,
        platform_user_id: str,
        display_name: str,
        request: IntakeRequest,
        *,
        now: datetime | None = None,
    ) -> IntakeRecord:
        """Record a song the bot accepted, before the platform is told it arrived; the
        user is recorded as seen (``upsert_user``) in the same short transaction, since
        the platform waits for both.

        Raises:
            IntakeExistsError: the platform delivered the same message again.
            InvalidUserRefError: unknown platform or unusable id.
        """
        now = self._now(now)
        async with self._db.write() as session:
            user = await users.upsert(session, platform, platform_user_id, display_name, now)
            await session.flush()
            return await intake.accept(session, user, request, now)

    async def note_intake_progress(self, intake_id: int, message_ref: str) -> None:
        """Remember the id of the message that shows an accepted song's progress."""
        async with self._db.write() as session:
            await intake.note_progress_message(session, intake_id, message_ref)

    async def forget_intake(self, intake_id: int) -> bool:
        """Forget an accepted song that was refused or given up; False if already gone."""
        async with self._db.write() as session:
            return await intake.remove(session, intake_id)

    async def pending_intakes(self, *, holder: str | None = None) -> list[IntakeRecord]:
        """The songs a previous process (``holder``) accepted and left without a job."""
        async with self._db.read() as session:
            return await intake.pending(session, holder=holder)

    # Recovery, retention, statistics

    async def recover_interrupted(self, *, now: datetime | None = None) -> list[RecoveredJob]:
        """Requeue or fail (refunded) the jobs a previous process left unfinished.

        Call once at start, before workers run. Requeued jobs keep their charge and
        input; the caller puts them back on its queue.
        """
        async with self._db.write() as session:
            return await recovery.recover_interrupted(session, self._now(now))

    async def cleanup(self, *, now: datetime | None = None) -> CleanupReport:
        """Remove orphaned uploads and stale temporaries once."""
        async with self._db.read() as session:
            keep = [job.input_path for job in await jobs.all_active(session) if job.input_path]
        return await retention.remove_expired(
            self.files,
            now=self._now(now),
            keep_uploads=[Path(path) for path in keep],
        )

    async def remove_leftover_uploads(self) -> CleanupReport:
        """Remove, whatever their age, the uploads no active job refers to and every
        interrupted write: what a crashed process left while songs downloaded.

        Call once at start, before any song is received: an upload being written or
        checked right now looks exactly like one a crashed process left behind.
        """
        async with self._db.read() as session:
            keep = [job.input_path for job in await jobs.all_active(session) if job.input_path]
        return await retention.remove_expired(
            self.files,
            now=utc_now(),  # file times are the host's, whatever clock the store was given
            keep_uploads=[Path(path) for path in keep],
            grace=timedelta(0),
        )

    async def run_cleanup_every(self, interval: timedelta) -> None:
        """Run :meth:`cleanup` now and every ``interval`` until the task is cancelled."""
        await retention.run_periodically(self.cleanup, interval)

    async def stats(self, *, top: int = 5, since: datetime | None = None) -> Stats:
        """Jobs per status, audio hours processed, cache hit rate and the top users."""
        async with self._db.read() as session:
            return await stats.collect(session, top=top, since=since)
