"""Lines placed on sung phrases, in order: the timing when no speech model applies.

Songs rarely have one phrase per line: two short lines are sung in one breath, a long
line takes two. So the lines (weighted by their letters, ``separation.lyrics.wording``)
and the phrases (``separation.lyrics.phrases``) are matched in order by dynamic
programming, in blocks of either several lines sharing one phrase (split in proportion
to their letters) or one line over several phrases (merged). A block costs how far its
phrases' length is from what its letters predict at the song's average pace (squared
log ratio), plus a small price for each split or merge, so a one-to-one match wins when
the lengths agree and the cheapest splits and merges win when they must.

The table is filled a line at a time, every phrase at once (numpy), so a song of a few
hundred lines takes milliseconds.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from separation.lyrics.phrases import Phrase

_MAX_BLOCK = 6
"""Most lines sung in one phrase, or phrases one line is sung over."""
_SPLIT_COST = 0.35
_MERGE_COST = 0.35
_MAX_CELLS = 4_000_000
"""Largest table (lines x phrases, 32 MB) matched block by block; past it (thousands of
lines, which no song has), the lines share the voiced time by their letters."""


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
    (far more lines than phrases, or the other way round) or the table would be too big.

    Row by row over the lines, each block shape evaluated for all phrases at once.
    """
    lines, count = len(weights), len(phrases)
    if (lines + 1) * (count + 1) > _MAX_CELLS or not 1 / _MAX_BLOCK <= lines / count <= _MAX_BLOCK:
        return None
    line_sums = np.cumsum([0.0, *weights])
    phrase_sums = np.cumsum([0.0, *(span.duration for span in phrases)])
    steps = _steps()
    cost = np.full((lines + 1, count + 1), np.inf)
    came_by = np.full((lines + 1, count + 1), -1, dtype=np.int8)
    cost[0, 0] = 0.0
    for line in range(1, lines + 1):
        for number, step in enumerate(steps):
            if step.lines > line or step.phrases > count:
                continue
            expected = max((line_sums[line] - line_sums[line - step.lines]) * pace, 1e-3)
            sung = np.maximum(
                phrase_sums[step.phrases :] - phrase_sums[: count + 1 - step.phrases], 1e-3
            )
            total = cost[line - step.lines, : count + 1 - step.phrases] + (
                np.log(sung / expected) ** 2
                + _SPLIT_COST * (step.lines - 1)
                + _MERGE_COST * (step.phrases - 1)
            )
            row, came = cost[line, step.phrases :], came_by[line, step.phrases :]
            better = total < row
            row[better], came[better] = total[better], number
    return _walk_back(came_by, steps, lines, count)


def _steps() -> list[_Step]:
    return [_Step(1, 1)] + [
        step for size in range(2, _MAX_BLOCK + 1) for step in (_Step(size, 1), _Step(1, size))
    ]


def _walk_back(
    came_by: np.ndarray, steps: Sequence[_Step], lines: int, count: int
) -> list[_Step] | None:
    path: list[_Step] = []
    line, phrase = lines, count
    while line or phrase:
        number = int(came_by[line, phrase])
        if number < 0:
            return None
        step = steps[number]
        path.append(step)
        line, phrase = line - step.lines, phrase - step.phrases
    return path[::-1]


def _spread(weights: Sequence[int], phrases: Sequence[Phrase]) -> list[tuple[Phrase, ...]]:
    """Every line a share of the whole voiced time equal to its share of the letters:
    what is left when the blocks cannot match the lines to the phrases."""
    passed = [0.0, *itertools.accumulate(span.duration for span in phrases)]
    bounds = [0.0, *itertools.accumulate(weights)]
    scale = passed[-1] / bounds[-1]
    return [
        _voiced_slice(phrases, passed, begin * scale, end * scale)
        for begin, end in itertools.pairwise(bounds)
    ]


def _voiced_slice(
    phrases: Sequence[Phrase], passed: Sequence[float], begin: float, end: float
) -> tuple[Phrase, ...]:
    """The parts of ``phrases`` between ``begin`` and ``end`` seconds of voiced time
    (``passed[i]``: the voiced time before phrase ``i``)."""
    parts: list[Phrase] = []
    index = max(0, bisect.bisect_right(passed, begin) - 1)
    while index < len(phrases) and passed[index] < end:
        span = phrases[index]
        low, high = max(begin, passed[index]), min(end, passed[index + 1])
        if high > low:
            parts.append(
                Phrase(span.start + low - passed[index], span.start + high - passed[index])
            )
        index += 1
    return tuple(parts) or (Phrase(phrases[-1].end, phrases[-1].end),)


def _split(phrase: Phrase, weights: Sequence[int]) -> list[Phrase]:
    total = sum(weights)
    parts: list[Phrase] = []
    start = phrase.start
    for value in weights:
        end = start + phrase.duration * value / total
        parts.append(Phrase(start, end))
        start = end
    return parts
