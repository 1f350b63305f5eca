"""The words of a song for its karaoke video: kept with the job, found, or sent by its user.

In the order the issue gives (24): the words kept with the job (those its song's tags
carried, noted when it was delivered, or those its user or the lyrics service gave for
an earlier video), then the operator's lyrics service (LRCLIB) asked by the song's
artist, title and length, which is kept with the job too, so a second press neither
asks nor looks up again. When none of these has them, the caller asks the user
(``bot.chat.conversation.videos``).

Lyrics are a stranger's text, whether a user or LRCLIB sent them: they are cleaned and
parsed by ``separation.lyrics.parse`` before they are kept, so what cannot be used is
refused at once in one sentence (``LyricsInputError.user_message``) rather than after a
minute of rendering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.chat.conversation.credits import display_title, file_stem
from bot.chat.conversation.types import LyricsUpload
from separation.errors import LyricsInputError, LyricsServiceError
from separation.lyrics.lrclib import LrclibLyrics
from separation.lyrics.model import LyricsSource
from separation.lyrics.parse import clean_lyrics_text, parse_lyrics
from storage.errors import StorageError
from storage.records import JobRecord
from storage.store import Store

logger = logging.getLogger(__name__)


class LyricsService(Protocol):
    """What the chat needs of a synced-lyrics service (``separation.lyrics.lrclib``'s
    ``LrclibClient``)."""

    async def find(
        self, *, artist: str, title: str, album: str | None, duration_seconds: float | None
    ) -> LrclibLyrics | None: ...


@dataclass(frozen=True)
class SongWords:
    """A song as its video shows it: credits, and the words when they are known."""

    title: str
    artist: str | None
    text: str | None
    """Cleaned LRC, enhanced LRC or plain text; None: nobody has given them yet."""
    source: LyricsSource | None


class LyricsFinder:
    """Finds, checks and keeps the words of a job's song."""

    def __init__(
        self, *, store: Store, service: LyricsService | None = None, from_tags: bool = True
    ) -> None:
        """``service``: the lyrics service, None where the operator turned it off;
        ``from_tags``: keep the words a song's tags carry (``lyrics.from_tags``)."""
        self._store = store
        self._service = service
        self._from_tags = from_tags

    async def note_delivery(
        self, job: JobRecord, *, title: str, artist: str | None, tag_lyrics: str | None
    ) -> None:
        """Keep a delivered song's credits and its tags' words for its videos; words kept
        already (its user's, sent with the song) stay. Never raises: the song is
        delivered; at worst a video press asks for the words."""
        text = tag_lyrics if self._from_tags and tag_lyrics and tag_lyrics.strip() else None
        try:
            if text is not None and await self._has_words(job):
                text = None  # its user's, sent with the song (``/karaoke lyrics:``), win
            await self._store.lyrics.note_song(
                job.id,
                title=title,
                artist=artist,
                text=text,
                source=LyricsSource.TAGS.value if text else None,
            )
        except (StorageError, ValueError) as exc:
            logger.warning("job %s: could not keep its credits and lyrics: %s", job.id, exc)

    async def _has_words(self, job: JobRecord) -> bool:
        """Whether words are kept for ``job`` already."""
        kept = await self._store.lyrics.get(job.id)
        return kept is not None and bool(kept.text)

    async def words_for(self, job: JobRecord) -> SongWords:
        """The job's song with its words from the first place that has them."""
        kept = await self._store.lyrics.get(job.id)
        title = (kept.title if kept else None) or display_title(file_stem(job.original_filename))
        artist = kept.artist if kept else None
        if kept is not None and kept.text and kept.source:
            return SongWords(title, artist, kept.text, LyricsSource(kept.source))
        text = await self._from_service(job, title, artist)
        if text is not None:
            await self._store.lyrics.put(job.id, text, LyricsSource.LRCLIB.value)
            return SongWords(title, artist, text, LyricsSource.LRCLIB)
        return SongWords(title, artist, None, None)

    async def keep_users(self, job: JobRecord, lyrics: LyricsUpload) -> None:
        """Check and keep the words a user sent for ``job``.

        Raises:
            LyricsInputError: not text, too long, no words (its ``user_message`` says so).
        """
        text = users_words(lyrics)
        await self._store.lyrics.put(job.id, text, LyricsSource.USER.value)
        logger.info("job %s: lyrics from its user kept (%d characters)", job.id, len(text))

    async def _from_service(self, job: JobRecord, title: str, artist: str | None) -> str | None:
        """The service's words for the song, checked; None when it is off, has none, the
        song has no artist to ask by, or the answer is unusable (logged)."""
        if self._service is None or not artist:
            return None
        try:
            found = await self._service.find(
                artist=artist,
                title=title,
                album=None,
                duration_seconds=job.input_duration_seconds or None,
            )
            if found is None or found.instrumental or not found.text.strip():
                return None
            return _checked(found.text, LyricsSource.LRCLIB)
        except (LyricsServiceError, LyricsInputError) as exc:
            logger.info("job %s: no usable lyrics from the service: %s", job.id, exc)
            return None


def users_words(lyrics: LyricsUpload) -> str:
    """The words a user sent, cleaned and checked, ready to keep with a job.

    Raises:
        LyricsInputError: not text, too long, no words (its ``user_message`` says so).
    """
    return _checked(lyrics.content, LyricsSource.USER)


def _checked(raw: str | bytes, source: LyricsSource) -> str:
    """``raw`` cleaned, once parsed to be sure it holds words a video can show.

    Raises:
        LyricsInputError: see :meth:`LyricsFinder.keep_users`.
    """
    text = clean_lyrics_text(raw)
    parse_lyrics(text, source=source)
    return text
