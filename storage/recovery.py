"""Recovery on start: settle the jobs a previous process left queued or running.

A job whose saved upload is still on disk goes back to the queue (its charge stands,
since it will run); any other is failed as ``interrupted`` and refunded. Each one is
reported with its user and chat references so the adapters can tell the user what
happened. Run it once at start, before any worker takes jobs: a job that is running in
this process looks exactly like one a crashed process left behind.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import aiofiles.os
from sqlalchemy.ext.asyncio import AsyncSession

import storage.jobs as jobs
import storage.users as users
from storage.models import User
from storage.records import JobStatus, RecoveredJob, RecoveryAction


async def recover_interrupted(session: AsyncSession, now: datetime) -> list[RecoveredJob]:
    """Requeue or fail (and refund) every queued or running job; report each one."""
    recovered = []
    for job in await jobs.all_active(session, for_update=True):
        if job.input_path and await aiofiles.os.path.isfile(Path(job.input_path)):
            if job.status == JobStatus.RUNNING:
                jobs.move(job, JobStatus.QUEUED)
            job.started_at = None
            action = RecoveryAction.REQUEUED
            await session.flush()
        else:
            await jobs.finish(
                session,
                job.id,
                JobStatus.FAILED,
                now,
                refund_reason=jobs.INTERRUPTED,
                error_kind=jobs.INTERRUPTED,
            )
            action = RecoveryAction.FAILED
        user = await session.get_one(User, job.user_id)
        recovered.append(
            RecoveredJob(job=jobs.to_record(job), user=users.to_record(user), action=action)
        )
    return recovered
