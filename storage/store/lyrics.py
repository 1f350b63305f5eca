"""``store.lyrics``: what a job's karaoke video shows, its song's credits and words (see
:mod:`storage.lyrics`)."""

from __future__ import annotations

from datetime import datetime

import storage.jobs as jobs
import storage.lyrics as lyrics
from storage.lyrics import LyricsRecord
from storage.store.context import StoreContext


class Lyrics:
    """Keep a job's song credits and words and read them back (retention drops them:
    ``store.upkeep``)."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context
        self._db = context.db

    async def note_song(
        self,
        job_id: int,
        *,
        title: str | None,
        artist: str | None,
        text: str | None = None,
        source: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Keep the delivered song's title and artist, and its words when it has some
        (``text`` from ``source``), in one transaction.

        Raises:
            JobNotFoundError: no such job.
            InvalidLyricsError: words that are empty, too long or of an unknown source.
        """
        now = self._context.now(now)
        async with self._db.write() as session:
            await jobs.load(session, job_id)
            await lyrics.note_song(session, job_id, title, artist, now)
            if text is not None:
                await lyrics.put(session, job_id, text, source or "", now)

    async def put(
        self, job_id: int, text: str, source: str, *, now: datetime | None = None
    ) -> None:
        """Keep ``text`` (from ``source``: ``"tags"``, ``"user"`` or ``"lrclib"``) as the
        job's words, replacing what it had.

        Raises:
            JobNotFoundError: no such job.
            InvalidLyricsError: empty, too long or from an unknown source.
        """
        now = self._context.now(now)
        async with self._db.write() as session:
            await jobs.load(session, job_id)
            await lyrics.put(session, job_id, text, source, now)

    async def get(self, job_id: int) -> LyricsRecord | None:
        """What is kept for the job, or None when nothing is (any more)."""
        async with self._db.read() as session:
            return await lyrics.get(session, job_id)
