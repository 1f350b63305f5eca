"""When each line of a song is on screen, where, and what fills when: the karaoke
designer's part of the video, as plain numbers (``separation.video.ass`` writes them).

The rules, as karaoke machines do it:

* Two slots, upper and lower. Lines take them in turn, so a line stays where it appeared
  (it never jumps from the lower slot to the upper one) and the next line can be read
  while the current one fills.
* A line appears with the line before it, or :data:`LEAD_IN` before it is sung,
  whichever is earlier, but never before its slot is free; it goes :data:`TAIL` after
  its last word, or earlier when the line after next needs the slot.
* After a long instrumental part (:data:`LONG_GAP` without words, the intro included) the
  screen clears; the next lines appear :data:`BREAK_LEAD` before they are sung, with a
  countdown of three beats, and start again in the upper slot.
* Words fill by their own times where they have them (``Timing.WORD``/``ALIGNED``);
  otherwise one fill runs across the line, spread by characters, so a long word takes
  longer than a short one.
* A title card (title, artist) shows from the start until shortly before the first line.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from separation.lyrics.model import LyricLine, Lyrics, Timing

LEAD_IN = 1.0
"""Seconds a line is on screen, at least, before its first word is sung."""
TAIL = 0.6
"""Seconds a sung line stays (filled) after its last word."""
MIN_LEAD = 0.3
"""The least time a line is shown before it is sung, when lines follow fast."""
LONG_GAP = 8.0
"""Seconds without words after which the screen clears and a countdown comes back."""
COUNTDOWN_BEATS = 3
BREAK_LEAD = COUNTDOWN_BEATS + 1.0
"""After a long gap, the next lines appear this long before they are sung."""
TITLE_GAP = 0.3
"""The title card goes this long before the first lines appear."""
MIN_TITLE = 1.5
"""A title card shorter than this is not shown (the song starts singing at once)."""
MAX_FILL_PER_CHARACTER = 0.5
"""Without word times, a line's fill lasts at most this long per character, or
:data:`MIN_FILL_CAP`, whichever is longer (an LRC line ends where the next begins,
which may be after a long instrumental part; a short line may be a held note)."""
MIN_FILL_CAP = 4.0
DEFAULT_LINE_SECONDS = 2.0
"""A last line with no end: how long its fill lasts, at least."""
MAX_LINE_CHARACTERS = 240
"""A longer line (a stranger's wall of text) is cut: it could not be read anyway."""


@dataclass(frozen=True)
class FilledWord:
    """A run of text and when its fill starts and ends (seconds in the song)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class ShownLine:
    """One line on screen."""

    slot: int
    """0: the upper slot, 1: the lower one."""
    show: float
    hide: float
    words: tuple[FilledWord, ...]


@dataclass(frozen=True)
class Screen:
    """Everything the video shows, in seconds of the song."""

    lines: tuple[ShownLine, ...]
    title: tuple[float, float] | None
    """When the title card shows, or None (no time for one)."""
    countdowns: tuple[float, ...]
    """When each countdown ends (the moment its line is sung)."""


def plan_screen(lyrics: Lyrics, *, duration_seconds: float) -> Screen:
    """Where and when every line shows; lines past the song's end are left out.

    Raises:
        ValueError: the lyrics have no times (``Timing.NONE``): align them first.
    """
    if not lyrics.is_timed:
        raise ValueError("untimed lyrics cannot be laid out; align them first")
    filled = _filled_lines(lyrics, duration_seconds)
    starts = [words[0].start for words in filled]
    ends = [words[-1].end for words in filled]
    breaks = [
        (index == 0 and starts[0] >= LONG_GAP)
        or (index > 0 and starts[index] - ends[index - 1] >= LONG_GAP)
        for index in range(len(filled))
    ]
    slots = _slots(breaks)
    hides = [_hide(index, starts, ends, breaks) for index in range(len(filled))]
    shows: list[float] = []
    for index in range(len(filled)):
        shows.append(_show(index, starts, breaks, shows, hides))
    lines = tuple(
        ShownLine(slot, show, min(max(hide, show + MIN_LEAD), duration_seconds), words)
        for slot, show, hide, words in zip(slots, shows, hides, filled, strict=True)
    )
    title = None
    if not lines or lines[0].show - TITLE_GAP >= MIN_TITLE:
        title = (0.0, lines[0].show - TITLE_GAP if lines else duration_seconds)
    countdowns = tuple(start for start, is_break in zip(starts, breaks, strict=True) if is_break)
    return Screen(lines=lines, title=title, countdowns=countdowns)


def _slots(breaks: list[bool]) -> list[int]:
    slots: list[int] = []
    for index, is_break in enumerate(breaks):
        slots.append(0 if index == 0 or is_break else 1 - slots[-1])
    return slots


def _hide(index: int, starts: list[float], ends: list[float], breaks: list[bool]) -> float:
    hide = ends[index] + TAIL
    after_next = index + 2
    if after_next < len(starts) and not any(breaks[index + 1 : after_next + 1]):
        # The line after next takes this slot: leave it room to be read first.
        hide = min(hide, starts[after_next] - MIN_LEAD)
    return max(hide, ends[index])


def _show(
    index: int, starts: list[float], breaks: list[bool], shows: list[float], hides: list[float]
) -> float:
    if index == 0 or breaks[index]:
        earliest = starts[index] - (BREAK_LEAD if breaks[index] else LEAD_IN)
        return max(0.0, earliest)
    show = min(starts[index] - LEAD_IN, shows[index - 1])
    if index >= 2 and not breaks[index - 1]:
        show = max(show, hides[index - 2])  # wait for the slot
    return max(0.0, min(show, starts[index]))


def _filled_lines(lyrics: Lyrics, duration_seconds: float) -> list[tuple[FilledWord, ...]]:
    """Every timed line that starts within the song, as words with fill times, in order."""
    timed = sorted(
        (line for line in lyrics.lines if _start(line) is not None and line.text.strip()),
        key=lambda line: _start(line) or 0.0,
    )
    by_word = lyrics.timing in (Timing.WORD, Timing.ALIGNED)
    result: list[tuple[FilledWord, ...]] = []
    for index, line in enumerate(timed):
        start = max(0.0, _start(line) or 0.0)
        if start >= duration_seconds:
            break
        following = _start(timed[index + 1]) if index + 1 < len(timed) else None
        if by_word and line.words:
            words = _own_times(line, duration_seconds)
        else:
            words = _spread(line, start, following, duration_seconds)
        if words:
            result.append(words)
    return result


def _start(line: LyricLine) -> float | None:
    """A line's time, or its first word's (an aligner may time the words only)."""
    if line.start is not None:
        return line.start
    return line.words[0].start if line.words else None


def _own_times(line: LyricLine, duration_seconds: float) -> tuple[FilledWord, ...]:
    words: list[FilledWord] = []
    cursor = 0.0
    budget = MAX_LINE_CHARACTERS
    for word in line.words:
        if budget <= 0:
            break
        start = min(max(word.start, cursor), duration_seconds)
        end = min(max(word.end, start), duration_seconds)
        words.append(FilledWord(word.text[:budget], start, end))
        budget -= len(word.text)
        cursor = end
    if words:  # a trailing space would pull a centred line off centre
        words[-1] = FilledWord(words[-1].text.rstrip(), words[-1].start, words[-1].end)
    return tuple(words)


def is_wide(char: str) -> bool:
    """A character of the scripts written without spaces (Chinese, Japanese), which
    take a full em: each is its own piece of the fill, and may end a row."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def _pieces(text: str) -> list[str]:
    """The pieces a line fills by: its words (with the space after them), and each
    character of a run written without spaces."""
    pieces: list[str] = []
    for word in text.split(" "):
        if any(is_wide(char) for char in word):
            pieces.extend(word)
        else:
            pieces.append(word)
        pieces[-1] += " "
    pieces[-1] = pieces[-1].rstrip()
    return pieces


def _spread(
    line: LyricLine, start: float, following: float | None, duration_seconds: float
) -> tuple[FilledWord, ...]:
    """One fill across the line: each word's share of the time is its share of the
    line's characters (spaces excluded)."""
    text = " ".join(line.text.split())[:MAX_LINE_CHARACTERS]
    if not text:
        return ()
    pieces = _pieces(text)
    characters = sum(len(piece.strip()) for piece in pieces)
    end = line.end if line.end is not None else following
    if end is None or end <= start:
        end = start + max(DEFAULT_LINE_SECONDS, characters * MAX_FILL_PER_CHARACTER / 2)
    end = min(end, start + max(MIN_FILL_CAP, characters * MAX_FILL_PER_CHARACTER))
    end = min(end, duration_seconds)
    words: list[FilledWord] = []
    done = 0
    for piece in pieces:
        begin = start + (end - start) * done / characters
        done += len(piece.strip())
        words.append(FilledWord(piece, begin, start + (end - start) * done / characters))
    return tuple(words)
