"""ID3 ``SYLT`` frames (synchronised lyrics) as timed lines.

A SYLT frame is a list of (text, time) pairs, each text a syllable, a word or a whole
line, the time in milliseconds (frames with times in MPEG frames are refused where they
are read, ``separation.lyrics.tag_reader``). A new line begins where a text holds a line
break: ID3 asks for one at the start of the text that begins a line, and some taggers put
it at the end of the one that ends a line; both are read. A frame with no line break at
all is one line a pair when its texts are phrases (8 columns or more on average: an English
word is about 5, a CJK character 2, a line of either 20 to 40), else one stream of words
or syllables that the timeline wraps into lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from separation.lyrics.timeline import Fragment, TimedLine
from separation.lyrics.wrap import columns

_PHRASE_COLUMNS = 8


def sylt_lines(entries: Sequence[tuple[str, int]]) -> list[TimedLine]:
    """The timed lines of a SYLT frame's ``(text, milliseconds)`` pairs."""
    texts = [text.replace("\r\n", "\n").replace("\r", "\n") for text, _ in entries]
    times = [milliseconds / 1000 for _, milliseconds in entries]
    if not any("\n" in text for text in texts):
        width = sum(columns(text.strip()) for text in texts)
        if entries and width >= _PHRASE_COLUMNS * len(entries):
            pairs = zip(texts, times, strict=True)
            return [TimedLine(time, (Fragment(None, text),)) for text, time in pairs]
    lines: list[list[Fragment]] = [[]]
    for text, time in zip(texts, times, strict=True):
        for number, part in enumerate(text.split("\n")):
            if number:
                lines.append([])
            if part or (number == 0 and lines[-1]):
                # An empty first part ends the word before it, at this time.
                lines[-1].append(Fragment(time, part))
    return [
        TimedLine(fragments[0].time or 0.0, tuple(fragments))
        for fragments in lines
        if any(fragment.text.strip() for fragment in fragments)
    ]
