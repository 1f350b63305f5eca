"""A line's words and their weights: how long each is sung, guessed from its letters.

Without a speech model the only clue to how long a word (or a line) is sung is how much
there is to sing: its letters. Counting letters and digits (``str.isalnum``) works for
every script: a CJK character is a syllable, a Latin word has about one syllable per
three letters, and both grow with the time they take. Punctuation and spaces weigh
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from separation.lyrics.model import LyricWord
from separation.lyrics.phrases import Phrase

_WORD = re.compile(r"\s*\S+\s*")
_SYLLABIC = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Kana and Han characters: Chinese and Japanese are written without spaces, one
character a syllable, and karaoke fills them one character at a time."""
_PIECE = re.compile(rf"\s*(?:[{_SYLLABIC}][^\w\s]*|[^\s{_SYLLABIC}]+)\s*")


def split_words(text: str) -> tuple[str, ...]:
    """``text`` cut into words (a Chinese or Japanese character is a word of its own),
    each with the spaces around it, so that they join back into ``text`` exactly (the
    renderer shows the line as it was written)."""
    if re.search(f"[{_SYLLABIC}]", text):
        return tuple(match.group(0) for match in _PIECE.finditer(text))
    return tuple(match.group(0) for match in _WORD.finditer(text))


def weight(text: str) -> int:
    """How much there is to sing in ``text``: its letters and digits."""
    return sum(1 for character in text if character.isalnum())


def spread_words(words: Sequence[str], spans: Sequence[Phrase]) -> tuple[LyricWord, ...]:
    """The words laid over the voiced ``spans`` of their line, each taking a share of the
    voiced time equal to its share of the letters (a word never lands in a gap)."""
    if not words or not spans:
        return ()
    weights = [max(1, weight(word)) for word in words]
    total_weight = sum(weights)
    voiced = sum(span.duration for span in spans)
    placed: list[LyricWord] = []
    sung = 0.0
    for word, word_weight in zip(words, weights, strict=True):
        length = voiced * word_weight / total_weight
        placed.append(LyricWord(word, _at(spans, sung), _at(spans, sung + length, ending=True)))
        sung += length
    return tuple(placed)


def _at(spans: Sequence[Phrase], voiced_seconds: float, *, ending: bool = False) -> float:
    """The song time at which ``voiced_seconds`` of the spans' voiced time have passed;
    an ``ending`` on a span boundary stays at the end of that span, not the next start."""
    for span in spans:
        if voiced_seconds < span.duration or (ending and voiced_seconds <= span.duration):
            return span.start + max(0.0, voiced_seconds)
        voiced_seconds -= span.duration
    return spans[-1].end
