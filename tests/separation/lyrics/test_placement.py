"""Phrases found on a stem's energy, and lines matched to them (no ffmpeg, no espeak)."""

from __future__ import annotations

import numpy as np
import pytest

from separation.lyrics.phrases import Phrase, find_phrases
from separation.lyrics.placement import place_lines
from separation.lyrics.speech import dictionary_spelling
from separation.lyrics.wording import split_words, spread_words, weight

RATE = 16_000


def bursts(
    spans: list[tuple[float, float]], *, seconds: float = 20.0, noise: float = 1e-4
) -> np.ndarray:
    """A 200 Hz tone where ``spans`` say, quiet noise (bleed) everywhere else."""
    samples = np.random.default_rng(1).normal(0.0, noise, round(seconds * RATE))
    time_axis = np.arange(len(samples)) / RATE
    for start, end in spans:
        inside = (time_axis >= start) & (time_axis < end)
        samples[inside] += 0.3 * np.sin(2 * np.pi * 200 * time_axis[inside])
    return samples.astype(np.float32)


def test_phrases_are_found_where_the_voice_is() -> None:
    spans = [(1.0, 3.0), (5.0, 6.5), (9.0, 12.0)]
    found = find_phrases(bursts(spans), RATE)
    assert len(found) == 3
    for phrase, (start, end) in zip(found, spans, strict=True):
        assert abs(phrase.start - start) <= 0.02 and abs(phrase.end - end) <= 0.02


def test_a_stem_sung_nine_tenths_of_the_time_still_has_its_phrases() -> None:
    """The threshold comes from the stem's quiet frames, however few there are."""
    spans = [(0.2 + index * 5.0, 4.7 + index * 5.0) for index in range(4)]
    found = find_phrases(bursts(spans), RATE)
    assert [(round(p.start, 1), round(p.end, 1)) for p in found] == [
        (round(start, 1), round(end, 1)) for start, end in spans
    ]


def test_a_breath_does_not_end_a_phrase_and_a_click_is_not_one() -> None:
    found = find_phrases(bursts([(1.0, 2.0), (2.2, 3.0), (6.0, 6.1), (8.0, 9.0)]), RATE)
    assert [(round(p.start, 1), round(p.end, 1)) for p in found] == [(1.0, 3.0), (8.0, 9.0)]


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(10 * RATE, dtype=np.float32),
        bursts([], noise=0.05),
        bursts([(1.0, 3.0)], noise=0.0) * 1e-4,
    ],
    ids=["digital silence", "steady noise", "a whisper far below full scale"],
)
def test_no_voice_no_phrases(samples: np.ndarray) -> None:
    assert find_phrases(samples, RATE) == ()


def test_one_line_per_phrase() -> None:
    phrases = [Phrase(1.0, 3.0), Phrase(5.0, 6.0), Phrase(8.0, 11.0)]
    assert place_lines([20, 10, 30], phrases) == [(phrase,) for phrase in phrases]


def test_lines_sung_in_one_breath_share_it_by_their_letters() -> None:
    phrases = [Phrase(1.0, 5.0), Phrase(7.0, 9.0)]
    placed = place_lines([30, 10, 20], phrases)
    assert placed == [(Phrase(1.0, 4.0),), (Phrase(4.0, 5.0),), (Phrase(7.0, 9.0),)]


def test_a_long_line_keeps_every_phrase_it_is_sung_over() -> None:
    phrases = [Phrase(1.0, 2.0), Phrase(2.5, 3.5), Phrase(6.0, 8.0), Phrase(10.0, 12.0)]
    assert place_lines([20, 20, 20], phrases) == [
        (phrases[0], phrases[1]),
        (phrases[2],),
        (phrases[3],),
    ]


@pytest.mark.parametrize("lines", [40, 100_000])
def test_far_more_lines_than_phrases_share_the_voiced_time(lines: int) -> None:
    phrases = [Phrase(1.0, 3.0), Phrase(5.0, 9.0)]
    placed = place_lines([10] * lines, phrases)
    assert len(placed) == lines
    flat = [span for spans in placed for span in spans]
    assert all(any(p.start <= s.start <= s.end <= p.end for p in phrases) for s in flat)
    assert [s.start for s in flat] == sorted(s.start for s in flat)
    assert sum(span.duration for span in flat) == pytest.approx(6.0)


def test_words_join_back_and_never_land_in_a_breath() -> None:
    text = "  Hold on, to the  light! "
    words = split_words(text)
    assert "".join(words) == text and len(words) == 5
    assert weight(text) == 16
    spans = (Phrase(1.0, 2.0), Phrase(3.0, 4.0))
    placed = spread_words(words, spans)
    assert placed[0].start == 1.0 and placed[-1].end == 4.0
    for word in placed:
        assert any(span.start <= word.start < span.end for span in spans)
        assert any(span.start < word.end <= span.end for span in spans)
    assert [word.start for word in placed] == sorted(word.start for word in placed)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("君の名は。 Love 你好！", ("君", "の", "名", "は。 ", "Love ", "你", "好！")),
        ("さくら、さくら", ("さ", "く", "ら、", "さ", "く", "ら")),
        ("שלום עולם", ("שלום ", "עולם")),
    ],
    ids=["Japanese and Chinese", "kana", "Hebrew"],
)
def test_chinese_and_japanese_fill_a_character_at_a_time(text: str, words: tuple[str, ...]) -> None:
    assert split_words(text) == words


@pytest.mark.parametrize(
    ("word", "spelling"),
    [
        ("Don't,", "don't"),
        ("Don\u2019t", "don't"),
        ("(River)", "river"),
        ("'cause", "cause"),
        ("über", ""),
        ("42", ""),
    ],
)
def test_words_as_the_dictionary_spells_them(word: str, spelling: str) -> None:
    assert dictionary_spelling(word) == spelling
