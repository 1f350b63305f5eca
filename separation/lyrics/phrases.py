"""Where the voice is: sung phrases found on the vocals stem's energy.

A separated vocals stem is near silence between phrases (some bleed of the band, some
reverb tail) and loud where someone sings. So the frame loudness (RMS in dB, 20 ms
frames) has two clusters, and the threshold is taken from the stem's own distribution,
not a fixed level: a quiet recording and a loud master are read alike.

* The loud level is a high percentile of the frames, the floor a low one (never more
  than :data:`_DYNAMIC_RANGE_DB` below the loud level, so digital silence does not drag
  the threshold down to nothing).
* Hysteresis: a phrase starts when the level rises above a high threshold and ends
  only when it falls below a lower one, so a soft consonant does not cut a phrase.
* A gap shorter than :data:`MIN_GAP_SECONDS` is a breath inside a phrase, not the end
  of a line; a "phrase" shorter than :data:`MIN_PHRASE_SECONDS` is a click or a bleed.

A stem whose loud level is below :data:`_SILENCE_DB`, or whose loudness hardly varies
(noise, not a voice), has no phrases at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02
MIN_GAP_SECONDS = 0.35
MIN_PHRASE_SECONDS = 0.25
_LOUD_PERCENTILE = 95.0
_FLOOR_PERCENTILE = 5.0
"""Low enough that a stem sung nine tenths of the time still has its floor in a pause."""
_DYNAMIC_RANGE_DB = 45.0
_SILENCE_DB = -55.0
"""Below this (dBFS) the stem's loudest frames are no voice (a mute or near-mute stem)."""
_MIN_CONTRAST_DB = 12.0
_START_SHARE = 0.55
"""A phrase starts above floor + this share of the way to the loud level..."""
_END_SHARE = 0.35
"""...and ends below floor + this share."""


@dataclass(frozen=True)
class Phrase:
    """Seconds from the start of the song where one stretch of singing begins and ends."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS of each :data:`FRAME_SECONDS` frame, in dB relative to full scale."""
    frame = max(1, round(FRAME_SECONDS * sample_rate))
    count = len(samples) // frame
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    frames = samples[: count * frame].reshape(count, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return np.asarray(20.0 * np.log10(rms + 1e-10), dtype=np.float64)


def find_phrases(samples: np.ndarray, sample_rate: int) -> tuple[Phrase, ...]:
    """The sung phrases of a vocals stem, in order; empty when no voice is found."""
    levels = frame_levels(samples, sample_rate)
    if len(levels) == 0:
        return ()
    loud = float(np.percentile(levels, _LOUD_PERCENTILE))
    floor = max(float(np.percentile(levels, _FLOOR_PERCENTILE)), loud - _DYNAMIC_RANGE_DB)
    if loud < _SILENCE_DB or loud - floor < _MIN_CONTRAST_DB:
        return ()
    start_level = floor + _START_SHARE * (loud - floor)
    end_level = floor + _END_SHARE * (loud - floor)
    spans = _hysteresis(levels, start_level, end_level)
    return _tidied(spans)


def _hysteresis(levels: np.ndarray, start_level: float, end_level: float) -> list[Phrase]:
    spans: list[Phrase] = []
    opened: int | None = None
    last_loud = 0
    for index, level in enumerate(levels.tolist()):
        if opened is None:
            if level >= start_level:
                opened, last_loud = index, index
        elif level >= end_level:
            last_loud = index
        else:
            spans.append(Phrase(opened * FRAME_SECONDS, (last_loud + 1) * FRAME_SECONDS))
            opened = None
    if opened is not None:
        spans.append(Phrase(opened * FRAME_SECONDS, (last_loud + 1) * FRAME_SECONDS))
    return spans


def _tidied(spans: list[Phrase]) -> tuple[Phrase, ...]:
    """Breaths closed (short gaps joined), then clicks dropped (short phrases)."""
    joined: list[Phrase] = []
    for span in spans:
        if joined and span.start - joined[-1].end < MIN_GAP_SECONDS:
            joined[-1] = Phrase(joined[-1].start, span.end)
        else:
            joined.append(span)
    return tuple(span for span in joined if span.duration >= MIN_PHRASE_SECONDS)
