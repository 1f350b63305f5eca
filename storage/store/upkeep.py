"""``store.upkeep``: recovery on start and retention of upload files."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import storage.jobs as jobs
import storage.lyrics as lyrics
import storage.recovery as recovery
import storage.retention as retention
from storage.records import CleanupReport, RecoveredJob, utc_now
from storage.store.context import StoreContext


class Upkeep:
    """What keeps the store consistent across crashes: jobs a previous process left, and
    uploads no active job needs any more."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def recover_interrupted(self, *, now: datetime | None = None) -> list[RecoveredJob]:
        """Requeue or fail (refunded) the jobs a previous process left unfinished.

        Call once at start, before workers run. Requeued jobs keep their charge and
        input; the caller puts them back on its queue.
        """
        async with self._db.write() as session:
            return await recovery.recover_interrupted(session, self._context.now(now))

    async def cleanup(self, *, now: datetime | None = None) -> CleanupReport:
        """Remove orphaned uploads and stale temporaries once, and the lyrics kept for
        longer than their jobs' stems are (``storage.lyrics``)."""
        moment = self._context.now(now) - self._context.lyrics_max_age
        async with self._db.write() as session:
            await lyrics.remove_stored_before(session, moment)
        return await retention.remove_expired(
            self._context.files,
            now=self._context.now(now),
            keep_uploads=await self._active_uploads(),
        )

    async def remove_leftover_uploads(self) -> CleanupReport:
        """Remove, whatever their age, the uploads no active job refers to and every
        interrupted write: what a crashed process left while songs downloaded.

        Call once at start, before any song is received: an upload being written or
        checked right now looks exactly like one a crashed process left behind.
        """
        return await retention.remove_expired(
            self._context.files,
            now=utc_now(),  # file times are the host's, whatever clock the store was given
            keep_uploads=await self._active_uploads(),
            grace=timedelta(0),
        )

    async def run_cleanup_every(self, interval: timedelta) -> None:
        """Run :meth:`cleanup` now and every ``interval`` until the task is cancelled."""
        await retention.run_periodically(self.cleanup, interval)

    async def _active_uploads(self) -> list[Path]:
        async with self._db.read() as session:
            active = await jobs.all_active(session)
            return [Path(job.input_path) for job in active if job.input_path]
