"""Timed lines as read (from LRC, enhanced LRC or SYLT frames) made into the lines a video
shows: in order, each with an end, each word with its start and end, none past the song.

The rules, decided once for every source:

* Lines are sorted by start (an LRC may list its times in any order). A negative time (a
  negative tag, or an ``[offset:]`` that moves the first line before zero) is clamped to
  zero, and of several lines before zero only the last one is kept: at zero it is the one
  being sung. Lines starting at or after the song's end (``duration_seconds``) are dropped.
* Two lines at the same time: the first with words wins (LRC files often put a
  translation at the same time as the original; one line is sung, not two).
* A line without words is a gap: it ends the line before it and shows nothing.
* A line ends at its explicit end (enhanced LRC's last ``<mm:ss.xx>`` after the last word),
  else, with word times, :data:`~separation.lyrics.limits.MAX_WORD_SECONDS` after its last
  timed word, else :data:`~separation.lyrics.limits.MAX_LINE_SECONDS` after its start; in
  every case no later than the next line's start or the song's end.
* A word's time is kept within its line: never before the line's own time (which orders
  the line among the others), never before the word before it, never after the line's end.
* Words without their own time share the time up to the next known one in proportion to
  their width, so a line timed as a whole fills at a steady speed; a word ends where the
  next begins (or at the explicit end an empty word tag gives it).
* A line wider than a phone's line is wrapped (``separation.lyrics.wrap``), each part
  keeping its words' times.

Every line of the result has its words, and ``"".join(w.text for w in line.words) ==
line.text``; times never decrease and ``line.start <= word.start <= word.end <= line.end``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from separation.lyrics.limits import (
    MAX_LINE_COLUMNS,
    MAX_LINE_SECONDS,
    MAX_LINES,
    MAX_TIME_SECONDS,
    MAX_WORD_SECONDS,
    LyricsBeyondSongError,
    LyricsTooLongError,
    NoWordsError,
)
from separation.lyrics.lrc_tags import without_time_tags
from separation.lyrics.model import LyricLine, LyricWord, Timing
from separation.lyrics.wrap import columns, words_of, wrapped_words

_SAME_TIME_SECONDS = 0.001


@dataclass(frozen=True)
class Fragment:
    """Text sung from ``time`` on (None: no time of its own). Empty text with a time marks
    the end of the word before it."""

    time: float | None
    text: str


@dataclass(frozen=True)
class TimedLine:
    """One line at one of its times, as a source wrote it."""

    start: float
    fragments: tuple[Fragment, ...]

    @functools.cached_property
    def is_gap(self) -> bool:
        return not any(without_time_tags(fragment.text).strip() for fragment in self.fragments)

    @property
    def word_timed(self) -> bool:
        return any(fragment.time is not None for fragment in self.fragments)


@dataclass
class _Piece:
    text: str
    start: float | None
    end: float | None = field(default=None)


def timed_lines(
    lines: Sequence[TimedLine], *, duration_seconds: float | None
) -> tuple[list[LyricLine], Timing]:
    """``lines`` as the video shows them, and how they are timed (``WORD`` when every
    line has word times, else ``LINE``).

    Raises:
        LyricsTooLongError: more than ``MAX_LINES`` lines to sing.
        NoWordsError: no line has words.
        LyricsBeyondSongError: lines have words, but all start after the song's end.
    """
    ordered = _ordered(lines, duration_seconds)
    sung = sum(1 for line in ordered if not line.is_gap)
    if sung > MAX_LINES:  # before the work on each line (wrapping only adds lines)
        raise LyricsTooLongError(detail=f"{sung} timed lines")
    result: list[LyricLine] = []
    word_timed = True
    for index, line in enumerate(ordered):
        if line.is_gap:
            continue
        next_start = ordered[index + 1].start if index + 1 < len(ordered) else None
        result.extend(_timed(line, next_start, duration_seconds))
        word_timed = word_timed and line.word_timed
    if not result:
        raise NoWordsError()
    return result, Timing.WORD if word_timed else Timing.LINE


def _ordered(lines: Sequence[TimedLine], duration_seconds: float | None) -> list[TimedLine]:
    """Sorted, clamped to [0, end), same times and empty gaps resolved."""
    end = MAX_TIME_SECONDS if duration_seconds is None else min(duration_seconds, MAX_TIME_SECONDS)
    ordered = sorted(lines, key=lambda line: line.start)
    before_zero = [line for line in ordered if line.start < 0]
    ordered = ordered[len(before_zero) :]
    if before_zero and not (ordered and ordered[0].start == 0):
        ordered.insert(0, _from_zero(before_zero[-1]))
    within = [line for line in ordered if line.start < end]
    if duration_seconds is not None and all(line.is_gap for line in within):
        if not all(line.is_gap for line in ordered):
            raise LyricsBeyondSongError(duration_seconds=duration_seconds)
    kept: list[TimedLine] = []
    for line in within:
        if kept and line.start - kept[-1].start < _SAME_TIME_SECONDS:
            if kept[-1].is_gap and not line.is_gap:
                kept[-1] = line
            continue
        if line.is_gap and (not kept or kept[-1].is_gap):
            continue
        kept.append(line)
    return kept


def _from_zero(line: TimedLine) -> TimedLine:
    fragments = tuple(
        Fragment(None if f.time is None else max(0.0, f.time), f.text) for f in line.fragments
    )
    return TimedLine(0.0, fragments)


def _timed(line: TimedLine, next_start: float | None, duration: float | None) -> list[LyricLine]:
    pieces = _pieces(line)
    # The line's own time orders it among the others: its words may not start before it.
    start = last_known = line.start
    if pieces[0].start is None:
        pieces[0].start = start
    for piece in pieces:
        if piece.start is not None:
            piece.start = last_known = max(piece.start, last_known)
    end = pieces[-1].end
    if end is None:
        end = last_known + MAX_WORD_SECONDS if line.word_timed else start + MAX_LINE_SECONDS
    end = max(end, last_known)
    for limit in (next_start, duration):
        if limit is not None:
            end = min(end, limit)
    for piece in pieces:
        if piece.start is not None:
            piece.start = min(piece.start, end)
    _interpolate(pieces, end)
    if duration is not None:
        # A word squeezed to the song's very end is never seen (and a line made of such
        # words would start where the next parse drops it).
        pieces = [piece for piece in pieces if _known(piece.start, end) < duration]
        if not pieces:
            return []
        pieces[-1].text = pieces[-1].text.rstrip()
    words = tuple(LyricWord(p.text, _known(p.start, end), _known(p.end, end)) for p in pieces)
    return _wrapped(LyricLine("".join(p.text for p in pieces), start, end, words))


def _pieces(line: TimedLine) -> list[_Piece]:
    """The line's words (each with the space after it), with their times where known."""
    pieces: list[_Piece] = []
    for fragment in line.fragments:
        text = without_time_tags(fragment.text)
        if pieces and text[:1].isspace() and not pieces[-1].text.endswith(" "):
            pieces[-1].text += " "
        words = words_of(text)
        if not words:
            if fragment.time is not None and pieces and pieces[-1].end is None:
                pieces[-1].end = fragment.time
            continue
        if text[-1:].isspace():
            words[-1] += " "
        pieces.append(_Piece(words[0], fragment.time))
        pieces.extend(_Piece(word, None) for word in words[1:])
    pieces[-1].text = pieces[-1].text.rstrip()
    return pieces


def _interpolate(pieces: list[_Piece], end: float) -> None:
    """Give every piece a start and an end: untimed ones share the time to the next
    known start (or to an explicit end) by width."""
    anchors = [index for index, piece in enumerate(pieces) if piece.start is not None]
    for number, first in enumerate(anchors):
        stop = anchors[number + 1] if number + 1 < len(anchors) else len(pieces)
        run = pieces[first:stop]
        t0 = run[0].start or 0.0
        t1 = pieces[stop].start if stop < len(pieces) else end
        t1 = t1 if t1 is not None else end
        span_end = min(max(run[-1].end if run[-1].end is not None else t1, t0), t1)
        weights = [max(1, columns(piece.text.strip())) for piece in run]
        total, before = sum(weights), 0
        for piece, weight in zip(run, weights, strict=True):
            piece.start = t0 + (span_end - t0) * before / total
            before += weight
        for piece, following in itertools.pairwise(run):
            piece.end = following.start
        run[-1].end = span_end


def _wrapped(line: LyricLine) -> list[LyricLine]:
    if columns(line.text) <= MAX_LINE_COLUMNS:
        return [line]
    parts: list[LyricLine] = []
    for group in wrapped_words([word.text for word in line.words]):
        words = list(line.words[group.start : group.stop])
        words[-1] = LyricWord(words[-1].text.rstrip(), words[-1].start, words[-1].end)
        text = "".join(word.text for word in words)
        parts.append(LyricLine(text, words[0].start, words[-1].end, tuple(words)))
    return parts


def _known(time: float | None, default: float) -> float:
    return default if time is None else time
