"""Lines timed word by word by the speech model, built on the energy placement.

The energy placement (``separation.lyrics.placement``) says roughly where each line is
sung; the speech model (``separation.lyrics.speech``) then finds each word inside that
stretch. Lines that share one phrase are aligned together (where one ends inside the
phrase is exactly what the energy cannot tell), with a margin into the silence around
them, never into the next group's singing.

An answer is used only where it is plausible: the dictionary knew most of the group's
words, no word lasts longer than anyone sings one, and the words are not squeezed into
a click. Anything else keeps the energy timing for those lines.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from separation.lyrics.model import LyricLine, LyricWord
from separation.lyrics.phrases import Phrase
from separation.lyrics.speech import WordGroup, WordTimes
from separation.lyrics.wording import weight

_MARGIN_SECONDS = 0.5
_MIN_KNOWN_SHARE = 0.6
_MAX_WORD_SECONDS = 6.0
_MIN_MEAN_WORD_SECONDS = 0.05
_MIN_VOICE_COVERED = 0.85


def line_groups(spans: Sequence[tuple[Phrase, ...]]) -> list[range]:
    """Runs of consecutive lines sung in one phrase (their spans touch), as indices."""
    groups: list[range] = []
    first = 0
    for index in range(1, len(spans) + 1):
        if index == len(spans) or spans[index][0].start > spans[index - 1][-1].end:
            groups.append(range(first, index))
            first = index
    return groups


def word_groups(
    groups: Sequence[range],
    spans: Sequence[tuple[Phrase, ...]],
    words: Sequence[tuple[str, ...]],
    duration_seconds: float,
) -> list[WordGroup]:
    """What the speech model is asked: each group's words and stretch of audio."""
    asked: list[WordGroup] = []
    for number, group in enumerate(groups):
        start, end = spans[group[0]][0].start, spans[group[-1]][-1].end
        before = spans[groups[number - 1][-1]][-1].end if number else 0.0
        after = (
            spans[groups[number + 1][0]][0].start if number + 1 < len(groups) else duration_seconds
        )
        asked.append(
            WordGroup(
                start=max(before, start - _MARGIN_SECONDS, (before + start) / 2),
                end=min(after, end + _MARGIN_SECONDS, (end + after) / 2),
                words=tuple(word for line in group for word in words[line]),
                voice_start=start,
                voice_end=end,
            )
        )
    return asked


def timed_group(
    asked: WordGroup,
    times: WordTimes | None,
    line_words: Sequence[tuple[str, ...]],
    phrases: Sequence[Phrase],
) -> list[LyricLine] | None:
    """The group's lines with the model's word times, kept on the voice (``phrases``);
    None when the answer is not plausible (the caller keeps the energy timing)."""
    if times is None or not _plausible(times):
        return None
    starts = [phrase.start for phrase in phrases]
    placed = [_on_the_voice(word, phrases, starts) for word in _filled(asked, times)]
    if not _covers_the_voice(asked, placed):
        return None
    placed[0] = _from_the_onset(placed[0], asked.voice_start)
    lines: list[LyricLine] = []
    for texts in line_words:
        own, placed = placed[: len(texts)], placed[len(texts) :]
        if not own:
            continue
        lines.append(LyricLine("".join(texts), own[0].start, own[-1].end, tuple(own)))
    return lines


def _plausible(times: WordTimes) -> bool:
    found = [pair for pair in times if pair is not None]
    if len(found) < _MIN_KNOWN_SHARE * len(times):
        return False
    lengths = [end - start for start, end in found]
    return max(lengths) <= _MAX_WORD_SECONDS and (
        sum(lengths) / len(lengths) >= _MIN_MEAN_WORD_SECONDS
    )


def _covers_the_voice(asked: WordGroup, placed: Sequence[LyricWord]) -> bool:
    """Whether the words span most of the singing the energy found. Measured with noise
    under slow espeak-ng speech: a lost search crams the last words of a line into a
    second and leaves the rest of the phrase empty."""
    covered = min(placed[-1].end, asked.voice_end) - max(placed[0].start, asked.voice_start)
    return covered >= _MIN_VOICE_COVERED * (asked.voice_end - asked.voice_start)


def _from_the_onset(first: LyricWord, onset: float) -> LyricWord:
    """The group's first word begins where the voice does: the model hears a breathy
    onset ("hold") up to 0.4 s late, the energy within a frame."""
    if first.start > onset and onset < first.end:
        return LyricWord(first.text, onset, first.end)
    return first


def _on_the_voice(word: LyricWord, phrases: Sequence[Phrase], starts: list[float]) -> LyricWord:
    """``word`` with a start or end the model put in a silence moved to the edge of the
    voice. Measured on slow espeak-ng speech: the model stretches a line's first word
    back over the silence before it (by up to 0.4 s), where the energy finds the onset
    within a frame."""
    start, end = word.start, word.end
    inside = bisect.bisect_right(starts, start) - 1
    if inside < 0 or start >= phrases[inside].end:
        following = inside + 1
        if following < len(phrases) and phrases[following].start < end:
            start = phrases[following].start
    inside = bisect.bisect_left(starts, end) - 1
    if inside >= 0 and phrases[inside].end < end and phrases[inside].end > start:
        end = phrases[inside].end
    return LyricWord(word.text, start, end)


def _filled(asked: WordGroup, times: WordTimes) -> list[LyricWord]:
    """Every word with a time: a word the dictionary lacks is placed between the words
    around it (by its letters), at the group's edge when it comes first or last."""
    placed: list[LyricWord] = []
    index = 0
    while index < len(times):
        pair = times[index]
        if pair is not None:
            placed.append(LyricWord(asked.words[index], pair[0], pair[1]))
            index += 1
            continue
        run_end = index
        while run_end < len(times) and times[run_end] is None:
            run_end += 1
        begin = placed[-1].end if placed else asked.start
        following = times[run_end] if run_end < len(times) else None
        finish = max(begin, following[0] if following is not None else asked.end)
        placed.extend(_between(asked.words[index:run_end], begin, finish))
        index = run_end
    return placed


def _between(words: Sequence[str], begin: float, finish: float) -> list[LyricWord]:
    weights = [max(1, weight(word)) for word in words]
    total = sum(weights)
    placed: list[LyricWord] = []
    at = begin
    for word, share in zip(words, weights, strict=True):
        end = at + (finish - begin) * share / total
        placed.append(LyricWord(word, at, end))
        at = end
    return placed
