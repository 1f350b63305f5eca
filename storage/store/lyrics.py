"""``store.lyrics``: the words of a job's song, kept for its karaoke video (see
:mod:`storage.lyrics`)."""

from __future__ import annotations

from datetime import datetime

import storage.jobs as jobs
import storage.lyrics as lyrics
from storage.lyrics import LyricsRecord
from storage.store.context import StoreContext


class Lyrics:
    """Keep a job's lyrics and read them back (retention drops them: ``store.upkeep``)."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def put(
        self, job_id: int, text: str, source: str, *, now: datetime | None = None
    ) -> LyricsRecord:
        """Keep ``text`` (from ``source``: ``"tags"``, ``"user"`` or ``"lrclib"``) as the
        job's lyrics, replacing what it had.

        Raises:
            JobNotFoundError: no such job.
            InvalidLyricsError: empty, too long or from an unknown source.
        """
        now = self._context.now(now)
        async with self._db.write() as session:
            await jobs.load(session, job_id)
            await lyrics.put(session, job_id, text, source, now)
        return LyricsRecord(job_id, text, source, now)

    async def get(self, job_id: int) -> LyricsRecord | None:
        """The job's lyrics, or None when none are kept (any more)."""
        async with self._db.read() as session:
            return await lyrics.get(session, job_id)
