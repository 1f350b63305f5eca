"""LRC and enhanced LRC, read into timed lines and written back from :class:`Lyrics`.

Reading (:func:`read_lrc`) takes clean lines (``separation.lyrics.clean``) and returns one
:class:`~separation.lyrics.timeline.TimedLine` per time tag: a chorus written once with
three times (``[00:12.00][01:10.00][02:05.00]Chorus``) is sung three times. Enhanced LRC's
word tags (``<00:12.50>word``) are absolute times that belong to one of the line's times:
the nearest to its first word; at the line's other times they move with the line.
``[offset:+500]`` moves every time 500 ms earlier, as players apply it; other metadata
(``[ar:]``, ``[ti:]``, ``[al:]``, ``[length:]``...) and lines without a time are not sung.
``[length:]`` is not trusted either: the song's end is what the caller measured
(``parse_lyrics``'s ``duration_seconds``), not what a stranger wrote.
What the times then mean (order, ends, gaps, the song's end) is the timeline's to decide.

Writing (:func:`to_lrc`) is the inverse for a timed :class:`Lyrics`: word tags where the
words have their own times, a gap line (``[mm:ss.xx]`` and nothing) where a line ends
before the next begins. It is how the chat and the command line keep lyrics as text, and
how SYLT frames become LRC (``separation.lyrics.tags``).
"""

from __future__ import annotations

from collections.abc import Sequence

from separation.lyrics.limits import MAX_TIME_TAGS_PER_LINE
from separation.lyrics.lrc_tags import LINE_TAG, METADATA, OFFSET, WORD_TAG, seconds_of, stamp
from separation.lyrics.model import LyricLine, Lyrics, Timing
from separation.lyrics.timeline import Fragment, TimedLine


def read_lrc(lines: Sequence[str]) -> list[TimedLine] | None:
    """Every timed line of ``lines``, at each of its times; None when no line has a time
    (plain text)."""
    offset = _offset_seconds(lines)
    timed: list[TimedLine] = []
    found = False
    for line in lines:
        times, rest = _line_times(line)
        if not times:
            continue
        found = True
        timed.extend(_at_each(times, _fragments(rest), offset))
    return timed if found else None


def _offset_seconds(lines: Sequence[str]) -> float:
    for line in lines:
        tag = METADATA.fullmatch(line)
        if tag and tag.group(1).lower() == "offset":
            value = OFFSET.fullmatch(tag.group(2))
            if value:
                return int(value.group(1)) / 1000
    return 0.0


def _line_times(line: str) -> tuple[list[float], str]:
    """The times in front of ``line`` and what follows them.

    A line that starts with a word tag instead (some enhanced LRC) is at that word's time.
    """
    times: list[float] = []
    position = 0
    while match := LINE_TAG.match(line, position):
        if len(times) < MAX_TIME_TAGS_PER_LINE:
            times.append(seconds_of(match))
        position = match.end()
        while position < len(line) and line[position] == " ":
            position += 1
    if not times and (word := WORD_TAG.match(line)):
        times.append(seconds_of(word))
    return times, line[position:]


def _fragments(text: str) -> tuple[Fragment, ...]:
    """``text`` cut at its word tags: the text before the first one has no time."""
    fragments: list[Fragment] = []
    time: float | None = None
    position = 0
    for match in WORD_TAG.finditer(text):
        if position < match.start() or time is not None:
            fragments.append(Fragment(time, text[position : match.start()]))
        time, position = seconds_of(match), match.end()
    fragments.append(Fragment(time, text[position:]))
    return tuple(fragments)


def _at_each(
    times: Sequence[float], fragments: tuple[Fragment, ...], offset: float
) -> list[TimedLine]:
    word_times = [fragment.time for fragment in fragments if fragment.time is not None]
    reference = min(times, key=lambda t: abs(t - word_times[0])) if word_times else times[0]
    return [
        TimedLine(
            time - offset,
            tuple(
                Fragment(None if f.time is None else f.time + time - reference - offset, f.text)
                for f in fragments
            ),
        )
        for time in times
    ]


def to_lrc(lyrics: Lyrics) -> str:
    """``lyrics`` as LRC text: enhanced (word tags) when timed by word (``WORD``,
    ``ALIGNED``), line tags when timed by line, the plain lines when untimed.

    Parsing the result gives the same lines and times, to the hundredth of a second. Two
    lines never share a time in the text (the parser would keep only the first): a line
    at the time of the one before it (a wrapped part of a line sung in no time at all) is
    written a hundredth later.
    """
    if not lyrics.is_timed:
        return "\n".join(line.text for line in lyrics.lines)
    by_word = lyrics.timing in (Timing.WORD, Timing.ALIGNED)
    written: list[str] = []
    starts = _distinct_starts(lyrics.lines)
    for index, (line, start) in enumerate(zip(lyrics.lines, starts, strict=True)):
        if by_word and line.words:
            words = "".join(f"<{stamp(word.start)}>{word.text}" for word in line.words)
            written.append(f"[{_at(start)}]{words}<{stamp(line.words[-1].end)}>")
        else:
            written.append(f"[{_at(start)}]{line.text}")
        end = start if line.end is None else max(start, _hundredths(line.end))
        if index + 1 == len(starts) or starts[index + 1] > end:
            written.append(f"[{_at(end)}]")
    return "\n".join(written)


def _distinct_starts(lines: Sequence[LyricLine]) -> list[int]:
    """Each line's start in hundredths of a second, each after the one before."""
    starts: list[int] = []
    previous_end = 0.0
    for line in lines:
        start = _hundredths(_start_of(line, previous_end))
        starts.append(max(start, starts[-1] + 1) if starts else start)
        previous_end = line.end if line.end is not None else starts[-1] / 100
    return starts


def _start_of(line: LyricLine, fallback: float) -> float:
    if line.start is not None:
        return line.start
    return line.words[0].start if line.words else fallback


def _hundredths(seconds: float) -> int:
    return round(max(0.0, seconds) * 100)


def _at(hundredths: int) -> str:
    return stamp(hundredths / 100)
