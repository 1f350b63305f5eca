"""Lyrics as values: lines, their words, and how well their times are known.

Everything here is already clean: the parsers (``separation.lyrics.parse``) turn
hostile text into these values, so the video renderer never sees raw user text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class LyricsSource(StrEnum):
    """Where a song's words came from (said in the reply, kept with the job)."""

    TAGS = "tags"
    """The song file's own tags (LRC in LYRICS/USLT, or SYLT frames)."""
    USER = "user"
    """The user sent them (an .lrc or .txt file, or pasted text)."""
    LRCLIB = "lrclib"
    """The operator's synced-lyrics service (LRCLIB's API)."""


class Timing(StrEnum):
    """How the times of a :class:`Lyrics` were found, best first."""

    WORD = "word"
    """Every word has its own time (enhanced LRC, SYLT by word)."""
    LINE = "line"
    """Every line has a time (LRC); words fill evenly within their line."""
    ALIGNED = "aligned"
    """Words placed by forced alignment on the vocals stem (approximate)."""
    APPROXIMATE = "approximate"
    """Lines placed on the sung phrases found on the vocals stem (approximate)."""
    NONE = "none"
    """Plain text: no times yet (must be aligned before a video can show it)."""

    @property
    def is_approximate(self) -> bool:
        """The reply says the timing is approximate."""
        return self in (Timing.ALIGNED, Timing.APPROXIMATE)


@dataclass(frozen=True)
class LyricWord:
    """One word (with the space after it, if any, in ``text``)."""

    text: str
    start: float
    """Seconds from the start of the song."""
    end: float
    """When the word's fill completes (≥ ``start``)."""


@dataclass(frozen=True)
class LyricLine:
    """One line as shown on screen; ``words`` is empty until the line is timed."""

    text: str
    start: float | None = None
    end: float | None = None
    words: tuple[LyricWord, ...] = ()


@dataclass(frozen=True)
class Lyrics:
    """A song's words, in singing order."""

    lines: tuple[LyricLine, ...]
    timing: Timing
    source: LyricsSource

    @property
    def is_timed(self) -> bool:
        return self.timing is not Timing.NONE

    def scaled(self, tempo: float) -> Lyrics:
        """The same lyrics for the song played at ``tempo`` (0.8: every time / 0.8)."""
        if tempo == 1.0:
            return self

        def at(seconds: float | None) -> float | None:
            return None if seconds is None else seconds / tempo

        lines = tuple(
            replace(
                line,
                start=at(line.start),
                end=at(line.end),
                words=tuple(
                    LyricWord(word.text, word.start / tempo, word.end / tempo)
                    for word in line.words
                ),
            )
            for line in self.lines
        )
        return replace(self, lines=lines)
