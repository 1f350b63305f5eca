"""What a job's karaoke video shows: its song's title and artist, and its words.

A song's first delivery notes its title and artist as the chat named it, and the words
its tags carried, if any; a press of "Lyrics video" finds the words once (from its user
or the lyrics service) and keeps them here too, so the next press (a key change on the
video, or the same button again) neither asks the user nor looks them up again. The
words are a stranger's text: bounded here (:data:`MAX_LYRICS_CHARS`), stored as the bot
cleaned them, never interpreted. ``source`` says where they came from, as
``separation.lyrics.model.LyricsSource`` spells it (``storage`` does not import it; the
table's check constraint and :data:`SOURCES` hold the same three words).

They go when the job's stems go: retention (``storage.store.upkeep``) removes the rows
older than the result cache keeps stems, since a video cannot be made without them.

Every function runs inside a transaction opened by the caller (``storage.store.lyrics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidLyricsError
from storage.models import JobLyrics, clip_to_column

SOURCES = ("tags", "user", "lrclib")
"""Where lyrics may come from (``job_lyrics.source``)."""
MAX_LYRICS_CHARS = 256_000
"""The most text kept for one job: the chat's largest lyrics download (a whole album's
LRC is under 50 KB)."""


@dataclass(frozen=True)
class LyricsRecord:
    """A job's song as its video shows it."""

    job_id: int
    title: str | None
    artist: str | None
    text: str | None
    """None until the words are known."""
    source: str | None
    """One of :data:`SOURCES` (None without ``text``)."""
    stored_at: datetime
    """When the row was last written."""


def check(text: str, source: str) -> None:
    """Refuse words the table must never hold.

    Raises:
        InvalidLyricsError: empty, longer than :data:`MAX_LYRICS_CHARS`, holding a NUL
            (PostgreSQL refuses it in text), or from an unknown source.
    """
    if source not in SOURCES:
        raise InvalidLyricsError(f"unknown lyrics source {source[:16]!r}")
    if not text.strip():
        raise InvalidLyricsError("no lyrics to keep")
    if len(text) > MAX_LYRICS_CHARS:
        raise InvalidLyricsError(f"lyrics longer than {MAX_LYRICS_CHARS} characters")
    if "\0" in text:
        raise InvalidLyricsError("lyrics with a NUL character")


async def _row(session: AsyncSession, job_id: int, now: datetime) -> JobLyrics:
    row = await session.get(JobLyrics, job_id, populate_existing=True)
    if row is None:
        row = JobLyrics(job_id=job_id, stored_at=now)
        session.add(row)
    row.stored_at = now
    return row


async def note_song(
    session: AsyncSession, job_id: int, title: str | None, artist: str | None, now: datetime
) -> None:
    """Keep the song's title and artist (cut to their columns), whatever words it has."""
    row = await _row(session, job_id, now)
    row.title = clip_to_column(title, JobLyrics.title)
    row.artist = clip_to_column(artist, JobLyrics.artist)
    await session.flush()


async def put(session: AsyncSession, job_id: int, text: str, source: str, now: datetime) -> None:
    """Keep ``text`` as the job's words, replacing any it had (checked with :func:`check`)."""
    check(text, source)
    row = await _row(session, job_id, now)
    row.text, row.source = text, source
    await session.flush()


async def get(session: AsyncSession, job_id: int) -> LyricsRecord | None:
    row = await session.get(JobLyrics, job_id, populate_existing=True)
    if row is None:
        return None
    return LyricsRecord(row.job_id, row.title, row.artist, row.text, row.source, row.stored_at)


async def remove_stored_before(session: AsyncSession, moment: datetime) -> int:
    """Drop the rows last written before ``moment``; returns how many."""
    result = await session.execute(
        delete(JobLyrics)
        .where(JobLyrics.stored_at < moment)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount
