"""Lines placed on sung phrases, in order: the timing when no speech model applies.

Songs rarely have one phrase per line: two short lines are sung in one breath, a long
line takes two. So the lines (weighted by their letters, ``separation.lyrics.wording``)
and the phrases (``separation.lyrics.phrases``) are matched in order by dynamic
programming, in blocks of either several lines sharing one phrase (split in proportion
to their letters) or one line over several phrases (merged). A block costs how far its
phrases' length is from what its letters predict at the song's average pace (squared
log ratio), plus a small price for each split or merge, so a one-to-one match wins when
the lengths agree and the cheapest splits and merges win when they must.

The search stays near the diagonal (line ``i`` of ``n`` near phrase ``i * m / n``), so a
song of a thousand lines costs milliseconds, not a table of a million cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from separation.lyrics.phrases import Phrase

_MAX_BLOCK = 6
"""Most lines sung in one phrase, or phrases one line is sung over."""
_SPLIT_COST = 0.35
_MERGE_COST = 0.35
_BAND = 40
_BAND_SHARE = 0.15


@dataclass(frozen=True)
class _Step:
    lines: int
    phrases: int


def place_lines(weights: Sequence[int], phrases: Sequence[Phrase]) -> list[tuple[Phrase, ...]]:
    """For each line (by its weight), the voiced spans it is sung over, in song order.

    Every phrase is sung by some line; a line sharing a phrase gets a slice of it.
    ``phrases`` must not be empty.
    """
    if not weights:
        return []
    weights = [max(1, value) for value in weights]
    pace = sum(span.duration for span in phrases) / sum(weights)
    steps = _best_steps(weights, phrases, pace)
    if steps is None:
        return _spread(weights, phrases)
    placed: list[tuple[Phrase, ...]] = []
    line, phrase = 0, 0
    for step in steps:
        block = phrases[phrase : phrase + step.phrases]
        if step.lines == 1:
            placed.append(tuple(block))
        else:
            placed.extend((part,) for part in _split(block[0], weights[line : line + step.lines]))
        line, phrase = line + step.lines, phrase + step.phrases
    return placed


def _best_steps(
    weights: Sequence[int], phrases: Sequence[Phrase], pace: float
) -> list[_Step] | None:
    """The cheapest blocks, first to last; None when no path of blocks reaches the end
    (far more lines than phrases, or the other way round)."""
    lines, count = len(weights), len(phrases)
    line_sums = _running_sums([float(value) for value in weights])
    phrase_sums = _running_sums([span.duration for span in phrases])
    band = _BAND + _BAND_SHARE * max(lines, count)
    cost = [[math.inf] * (count + 1) for _ in range(lines + 1)]
    came_by: list[list[_Step | None]] = [[None] * (count + 1) for _ in range(lines + 1)]
    cost[0][0] = 0.0
    for line in range(1, lines + 1):
        centre = line * count / lines
        for phrase in range(max(1, int(centre - band)), min(count, int(centre + band)) + 1):
            for step in _steps():
                before_line, before_phrase = line - step.lines, phrase - step.phrases
                if before_line < 0 or before_phrase < 0:
                    continue
                if (total := cost[before_line][before_phrase]) == math.inf:
                    continue
                expected = (line_sums[line] - line_sums[before_line]) * pace
                sung = phrase_sums[phrase] - phrase_sums[before_phrase]
                total += math.log(max(sung, 1e-3) / max(expected, 1e-3)) ** 2
                total += _SPLIT_COST * (step.lines - 1) + _MERGE_COST * (step.phrases - 1)
                if total < cost[line][phrase]:
                    cost[line][phrase], came_by[line][phrase] = total, step
    return _walk_back(came_by, lines, count)


def _steps() -> list[_Step]:
    return [_Step(1, 1)] + [
        step for size in range(2, _MAX_BLOCK + 1) for step in (_Step(size, 1), _Step(1, size))
    ]


def _walk_back(came_by: list[list[_Step | None]], lines: int, count: int) -> list[_Step] | None:
    steps: list[_Step] = []
    line, phrase = lines, count
    while line or phrase:
        step = came_by[line][phrase]
        if step is None:
            return None
        steps.append(step)
        line, phrase = line - step.lines, phrase - step.phrases
    return steps[::-1]


def _spread(weights: Sequence[int], phrases: Sequence[Phrase]) -> list[tuple[Phrase, ...]]:
    """Every line a share of the whole voiced time equal to its share of the letters:
    what is left when the blocks cannot match the lines to the phrases."""
    total = sum(weights)
    voiced = sum(span.duration for span in phrases)
    placed: list[tuple[Phrase, ...]] = []
    sung = 0.0
    for value in weights:
        length = voiced * value / total
        placed.append(_voiced_slice(phrases, sung, sung + length))
        sung += length
    return placed


def _voiced_slice(phrases: Sequence[Phrase], begin: float, end: float) -> tuple[Phrase, ...]:
    """The parts of ``phrases`` between ``begin`` and ``end`` seconds of voiced time."""
    parts: list[Phrase] = []
    passed = 0.0
    for span in phrases:
        low, high = max(begin, passed), min(end, passed + span.duration)
        if high > low:
            parts.append(Phrase(span.start + low - passed, span.start + high - passed))
        passed += span.duration
    return tuple(parts) or (Phrase(phrases[-1].end, phrases[-1].end),)


def _running_sums(values: Sequence[float]) -> list[float]:
    sums = [0.0]
    for value in values:
        sums.append(sums[-1] + value)
    return sums


def _split(phrase: Phrase, weights: Sequence[int]) -> list[Phrase]:
    total = sum(weights)
    parts: list[Phrase] = []
    start = phrase.start
    for value in weights:
        end = start + phrase.duration * value / total
        parts.append(Phrase(start, end))
        start = end
    return parts
