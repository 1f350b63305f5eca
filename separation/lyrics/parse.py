"""Lyrics text (LRC, enhanced LRC or plain) as :class:`~separation.lyrics.model.Lyrics`.

The entry points of ``separation.lyrics`` for text: :func:`clean_lyrics_text` (any bytes
or text a stranger sends, as clean bounded text, ``separation.lyrics.clean``),
:func:`parse_lyrics` (that text as lines, their times and words) and :func:`to_lrc` (timed
lyrics back to text, ``separation.lyrics.lrc``). Their refusals are the
:class:`~separation.errors.LyricsInputError` subclasses of ``separation.lyrics.limits``,
each with the one sentence the user reads (``exc.user_message``).

A text with at least one line time (``[mm:ss.xx]``) is LRC: its lines are timed by line
(``Timing.LINE``) or, when every line has word tags, by word (``Timing.WORD``); see
``separation.lyrics.timeline`` for how order, gaps, ends and the song's end are decided.
Otherwise it is plain text (``Timing.NONE``): its lines, without blank lines, lines that
are only a bracketed tag (``[Chorus]``, ``[ar:Artist]``) and stray time tags, to be
aligned to the vocals before a video can show them.

Who guarantees what about hostile text: this package guarantees that every line's and
word's text has no control character (no line break, no NUL, no bidi override), is at
most ``MAX_LINE_COLUMNS`` wide, that there are at most ``MAX_LINES`` lines, and that times
are finite, ordered and within the song. It keeps everything else as the text it is:
``{\\an8}``, ``\\N``, ``\\h``, ``<b>``, ``**bold**`` are words to show, not markup. The ASS
writer (``separation.video``) escapes backslashes and braces, so no user text reaches
libass as an override or a line break.
"""

from __future__ import annotations

from collections.abc import Sequence

from separation.lyrics.clean import clean_lyrics_text
from separation.lyrics.limits import (
    MAX_LINES,
    LyricsBeyondSongError,
    LyricsTooLongError,
    NotTextError,
    NoWordsError,
)
from separation.lyrics.lrc import read_lrc, to_lrc
from separation.lyrics.lrc_tags import BRACKETED, without_time_tags
from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, Timing
from separation.lyrics.timeline import timed_lines
from separation.lyrics.wrap import words_of, wrapped_words

__all__ = [
    "LyricsBeyondSongError",
    "LyricsTooLongError",
    "NoWordsError",
    "NotTextError",
    "clean_lyrics_text",
    "parse_lyrics",
    "to_lrc",
]


def parse_lyrics(
    text: str, *, source: LyricsSource, duration_seconds: float | None = None
) -> Lyrics:
    """``text``'s lines with their times (LRC, enhanced LRC) or without (plain text).

    ``text`` is cleaned first (cleaning clean text changes nothing), so any text may be
    given. ``duration_seconds``: the song's length; lines starting after it are dropped
    and the last one ends with the song.

    Raises:
        LyricsInputError: the subclasses of ``separation.lyrics.limits``: too long, not
            text, no words, or every time after the song's end.
    """
    lines = clean_lyrics_text(text).split("\n")
    timed = read_lrc(lines)
    if timed is None:
        shown, timing = _plain(lines), Timing.NONE
    else:
        shown, timing = timed_lines(timed, duration_seconds=duration_seconds)
    if len(shown) > MAX_LINES:
        raise LyricsTooLongError(detail=f"{len(shown)} lines on screen")
    return Lyrics(tuple(shown), timing, source)


def _plain(lines: Sequence[str]) -> list[LyricLine]:
    """The sung lines of plain text, wrapped. A line that is only a bracketed tag is not
    sung, whether written so or cut so by the wrapping (so that the lines read back from
    ``to_lrc`` are these)."""
    shown: list[LyricLine] = []
    for line in lines:
        words = words_of(without_time_tags(line))
        for group in wrapped_words(words):
            text = "".join(words[group.start : group.stop]).rstrip()
            if not BRACKETED.fullmatch(text):
                shown.append(LyricLine(text))
    if not shown:
        raise NoWordsError()
    return shown
