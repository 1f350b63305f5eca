"""Plain lyrics (no times) timed on the song's separated vocals stem.

Two ways, the better first where it applies:

* **Forced alignment** (``use_speech_model``): pocketsphinx's en-US model finds each
  word (``separation.lyrics.speech``) inside the stretch where the energy placement put
  its line. Result: :attr:`~separation.lyrics.model.Timing.ALIGNED`, word by word.
* **Energy** (always): the sung phrases on the stem (``separation.lyrics.phrases``),
  the lines matched to them in order (``separation.lyrics.placement``), words spread
  over each line by their letters. Result:
  :attr:`~separation.lyrics.model.Timing.APPROXIMATE`.

The speech model is used for the song when the dictionary knows nearly all the words
(otherwise the song is not English, and a model for another language would align
nonsense) and when at least half the lines got a plausible answer; lines without one
keep their energy timing. A stem with no voice at all is refused with
:class:`NoSingingFoundError`: spreading lines evenly over an instrumental would show
words nobody sings.

Lines with nothing to sing (blank, or punctuation only) take no time: they sit at the
start of the next sung line, with no words.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from separation.errors import LyricsInputError
from separation.lyrics.model import LyricLine, Lyrics, Timing
from separation.lyrics.phrases import Phrase, find_phrases
from separation.lyrics.placement import place_lines
from separation.lyrics.speech import align_groups
from separation.lyrics.speech_lines import line_groups, timed_group, word_groups
from separation.lyrics.vocals import SAMPLE_RATE, read_vocals
from separation.lyrics.wording import split_words, spread_words, weight

logger = logging.getLogger(__name__)

_MIN_ENGLISH_SHARE = 0.85
"""Share of the words the speech model's dictionary must know to use it at all."""
_MIN_ALIGNED_SHARE = 0.5
"""Share of the lines the speech model must have timed to call the result ALIGNED."""


class NoSingingFoundError(LyricsInputError):
    """The vocals stem has no voice to time the words on (an instrumental, or a song
    whose singing the separation could not find)."""

    kind = "no_singing"

    def __init__(self) -> None:
        super().__init__(
            "I couldn't hear any singing in this song to time the words to; "
            "send the lyrics with times (an .lrc file) instead."
        )


class NothingToSingError(LyricsInputError):
    """The lyrics have no letters or digits at all (only blank lines or punctuation)."""

    kind = "nothing_to_sing"

    def __init__(self) -> None:
        super().__init__("Those lyrics have no words in them to show.")


def align_lyrics(
    lyrics: Lyrics,
    vocals: Path,
    *,
    ffmpeg: str,
    duration_seconds: float,
    use_speech_model: bool = True,
) -> Lyrics:
    """``lyrics`` (``Timing.NONE``) with times found on the ``vocals`` stem.

    Lyrics that already have times are returned as they are.

    Args:
        lyrics: the song's words, parsed (``separation.lyrics.parse``).
        vocals: the separated vocals stem (our own FLAC or WAV).
        ffmpeg: the ffmpeg executable.
        duration_seconds: the song's length.
        use_speech_model: try word alignment with pocketsphinx first.

    Returns:
        The same lines with ``start``, ``end`` and ``words``; ``timing`` is
        ``Timing.ALIGNED`` or ``Timing.APPROXIMATE``.

    Raises:
        NoSingingFoundError: no voice on the stem.
        NothingToSingError: no line has a word in it.
        VocalsReadError: the stem could not be read (ours, not the user's).
    """
    if lyrics.is_timed:
        return lyrics
    sung = [index for index, line in enumerate(lyrics.lines) if weight(line.text) > 0]
    if not sung:
        raise NothingToSingError()
    samples = read_vocals(vocals, ffmpeg=ffmpeg, duration_seconds=duration_seconds)
    phrases = find_phrases(samples, SAMPLE_RATE)
    if not phrases:
        raise NoSingingFoundError()
    words = [split_words(lyrics.lines[index].text) for index in sung]
    spans = place_lines([weight(lyrics.lines[index].text) for index in sung], phrases)
    timed = [_energy_line(text, line_spans) for text, line_spans in zip(words, spans, strict=True)]
    timing = Timing.APPROXIMATE
    if use_speech_model:
        by_speech = _speech_lines(samples, phrases, spans, words, duration_seconds)
        if by_speech is not None and _share(by_speech) >= _MIN_ALIGNED_SHARE:
            timed = [spoken or energy for spoken, energy in zip(by_speech, timed, strict=True)]
            timing = Timing.ALIGNED
    logger.info("lyrics timed: %s, %d lines on %d phrases", timing, len(sung), len(phrases))
    return replace(lyrics, lines=_with_unsung(lyrics.lines, sung, timed), timing=timing)


def _energy_line(words: tuple[str, ...], spans: tuple[Phrase, ...]) -> LyricLine:
    return LyricLine("".join(words), spans[0].start, spans[-1].end, spread_words(words, spans))


def _speech_lines(
    samples: np.ndarray,
    phrases: Sequence[Phrase],
    spans: Sequence[tuple[Phrase, ...]],
    words: Sequence[tuple[str, ...]],
    duration_seconds: float,
) -> list[LyricLine | None] | None:
    """Each sung line as the speech model timed it (None where it did not); None when
    the model did not run or the words are not English."""
    groups = line_groups(spans)
    asked = word_groups(groups, spans, words, duration_seconds)
    answer = align_groups(samples, SAMPLE_RATE, asked, duration_seconds=duration_seconds)
    if answer is None or answer.known_share < _MIN_ENGLISH_SHARE:
        return None
    lines: list[LyricLine | None] = []
    for group, question, times in zip(groups, asked, answer.groups, strict=True):
        timed = timed_group(question, times, [words[index] for index in group], phrases)
        lines.extend(timed if timed is not None else [None] * len(group))
    return lines


def _share(lines: Sequence[LyricLine | None]) -> float:
    return sum(line is not None for line in lines) / max(1, len(lines))


def _with_unsung(
    lines: Sequence[LyricLine], sung: Sequence[int], timed: Sequence[LyricLine]
) -> tuple[LyricLine, ...]:
    """All the lines in order: the timed ones, and the unsung ones (original text, no
    words) at the start of the next sung line (the end of the song's last one after)."""
    by_index = dict(zip(sung, timed, strict=True))
    result: list[LyricLine] = []
    upcoming = iter(timed)
    next_sung: LyricLine | None = next(upcoming, None)
    for index, line in enumerate(lines):
        if index in by_index:
            result.append(replace(by_index[index], text=line.text))
            next_sung = next(upcoming, None)
            continue
        at = (next_sung if next_sung is not None else timed[-1]).start
        result.append(LyricLine(line.text, at, at))
    return tuple(result)
