"""Long lines cut into lines a phone can read: at most
:data:`~separation.lyrics.limits.MAX_LINE_COLUMNS` columns, balanced.

A line is measured in columns, as a terminal would: a CJK (wide or full-width) character
takes two, a combining mark or a joiner none. It is wrapped at its spaces; a word wider
than a line (a line of Chinese or Thai has no spaces at all) is cut between characters,
never before a combining mark or around a joiner. The parts are balanced (a line of 60
columns becomes two of 30, not 48 and 12), as a karaoke screen sets them.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

from separation.lyrics.limits import MAX_LINE_COLUMNS

_JOINERS = frozenset("\u200c\u200d")


def columns(text: str) -> int:
    """How wide ``text`` is on screen, in columns."""
    return sum(_width(character) for character in text)


def _width(character: str) -> int:
    if character in _JOINERS or unicodedata.category(character) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def words_of(text: str) -> list[str]:
    """``text``'s words, each with the space after it, none wider than a line.

    Whitespace runs are one space; the text's leading and trailing spaces are dropped.
    """
    words: list[str] = []
    for word in " ".join(text.split()).split(" "):
        if word:
            words.extend(chopped(word))
            words[-1] += " "
    if words:
        words[-1] = words[-1].rstrip()
    return words


def chopped(word: str) -> list[str]:
    """``word`` in balanced pieces of at most ``MAX_LINE_COLUMNS`` columns (one piece when
    it fits), cut only between characters that can stand apart."""
    if columns(word) <= MAX_LINE_COLUMNS:
        return [word]
    clusters: list[str] = []
    for character in word:
        joined = clusters and (
            _width(character) == 0 or clusters[-1][-1] in _JOINERS or character in _JOINERS
        )
        if joined:
            clusters[-1] += character
        else:
            clusters.append(character)
    widths = [columns(cluster) for cluster in clusters]
    parts = balanced(widths, [0] * len(widths))
    return ["".join(clusters[part.start : part.stop]) for part in parts]


def balanced(widths: Sequence[int], spaces: Sequence[int]) -> list[range]:
    """Consecutive groups of units (their indices) as even as can be, none wider than a line.

    ``widths[i]`` is unit ``i``'s width without what follows it, ``spaces[i]`` the width of
    what follows it (a space: 1), counted only between units of one group. A unit wider
    than a line gets a group of its own.
    """
    total = sum(widths) + sum(spaces[:-1])
    parts = max(1, math.ceil(total / MAX_LINE_COLUMNS))
    widest = max(widths, default=0)
    limit = min(MAX_LINE_COLUMNS, max(math.ceil(total / parts), widest))
    while True:
        groups = _greedy(widths, spaces, limit)
        if len(groups) <= parts or limit >= MAX_LINE_COLUMNS:
            return groups
        limit += 1


def _greedy(widths: Sequence[int], spaces: Sequence[int], limit: int) -> list[range]:
    groups: list[range] = []
    start, used = 0, 0
    for index, width in enumerate(widths):
        if index > start and used + spaces[index - 1] + width > limit:
            groups.append(range(start, index))
            start, used = index, width
        else:
            used += (spaces[index - 1] if index > start else 0) + width
    if widths:
        groups.append(range(start, len(widths)))
    return groups


def wrapped_words(words: Sequence[str]) -> list[range]:
    """``words`` (each with its space after it) grouped into lines."""
    widths = [columns(word.rstrip(" ")) for word in words]
    spaces = [len(word) - len(word.rstrip(" ")) for word in words]
    return balanced(widths, spaces)
