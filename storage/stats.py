"""Statistics for operators: jobs per status, audio processed, cache hits, top users.

Computed from the job records, which outlive their audio files, so the numbers cover
the whole history and not only what retention has kept on disk.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Job, User
from storage.records import JobStatus, Stats, TopUser


async def collect(session: AsyncSession, *, top: int = 5, since: datetime | None = None) -> Stats:
    """Gather :class:`Stats` for the jobs created at or after ``since`` (all when None)."""
    in_range = Job.created_at >= since if since is not None else true()
    done = Job.status == JobStatus.DONE.value

    users_count = await session.scalar(select(func.count()).select_from(User))
    by_status = {status.value: 0 for status in JobStatus}
    for status, count in await session.execute(
        select(Job.status, func.count()).where(in_range).group_by(Job.status)
    ):
        by_status[status] = count

    seconds, hits = (
        await session.execute(
            select(
                func.coalesce(func.sum(Job.input_duration_seconds), 0.0),
                func.count(case((Job.cache_hit.is_(True), 1))),
            ).where(in_range, done)
        )
    ).one()

    jobs_done = func.count(Job.id).label("jobs_done")
    audio_seconds = func.coalesce(func.sum(Job.input_duration_seconds), 0.0).label("seconds")
    top_rows = await session.execute(
        select(User.platform, User.platform_user_id, User.display_name, jobs_done, audio_seconds)
        .join(Job, Job.user_id == User.id)
        .where(in_range, done)
        .group_by(User.id, User.platform, User.platform_user_id, User.display_name)
        .order_by(jobs_done.desc(), audio_seconds.desc(), User.id)
        .limit(top)
    )
    done_count = by_status[JobStatus.DONE.value]
    return Stats(
        users=int(users_count or 0),
        jobs_by_status=by_status,
        audio_hours_processed=float(seconds) / 3600,
        cache_hits=int(hits),
        cache_hit_rate=hits / done_count if done_count else None,
        top_users=[
            TopUser(
                platform=platform,
                platform_user_id=platform_user_id,
                display_name=display_name,
                jobs_done=count,
                audio_minutes=float(total) / 60,
            )
            for platform, platform_user_id, display_name, count, total in top_rows
        ],
    )
