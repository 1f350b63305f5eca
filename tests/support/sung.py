"""A vocals stem with known words at known times, spoken by espeak-ng (the test proxy
for singing: separated vocals of real songs need the model, which tests do not run).

Two ways to make one:

* ``by_word=True``: every word synthesised on its own, trimmed of espeak-ng's silence
  and placed at a known time (a short pause after each). The ground truth is exact for
  every word, so word starts can be checked.
* ``by_word=False``: each line spoken as connected speech; only where a line starts is
  known exactly (the first sample above the trim level).

The stem is written as the pool keeps one: 44.1 kHz stereo FLAC, with digital silence
between the lines (as a muted stretch of a real stem can be).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ESPEAK = shutil.which("espeak-ng")
SKIP_REASON = "espeak-ng is not installed (apt-get install -y espeak-ng)"
_TRIM_LEVEL = 0.01
_WORD_PAUSE_SECONDS = 0.08
_LEVEL = 0.5


@dataclass(frozen=True)
class SpokenLine:
    """A line as it is in the stem: its text and when each word begins (seconds)."""

    text: str
    word_starts: tuple[float, ...]
    """Every word's start (``by_word``), or only the line's start."""
    end: float

    @property
    def start(self) -> float:
        return self.word_starts[0]


def speak(text: str, *, words_per_minute: int = 150) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: float samples without leading or trailing silence."""
    assert ESPEAK is not None, SKIP_REASON
    wav = subprocess.run(
        [ESPEAK, "-s", str(words_per_minute), "--stdout", "--", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    samples = pcm.astype(np.float32) / 32768
    loud = np.nonzero(np.abs(samples) > _TRIM_LEVEL)[0]
    return samples[loud[0] : loud[-1] + 1], rate


def sung_stem(
    path: Path,
    ffmpeg: str,
    lines: Sequence[tuple[float, str]],
    *,
    seconds: float,
    by_word: bool = True,
    words_per_minute: int = 150,
    bleed: float = 0.0,
) -> list[SpokenLine]:
    """Write a vocals stem to ``path`` (FLAC) with each ``(start, text)`` line spoken from
    ``start`` on; return where everything landed.

    ``words_per_minute`` below 100 draws words out as a slow song does; ``bleed`` (RMS,
    full scale 1) adds a steady noise under the voice, as the band leaks into a stem."""
    _, rate = speak("a")
    track = np.zeros(round(seconds * rate), dtype=np.float32)
    spoken: list[SpokenLine] = []
    for start, text in lines:
        parts = text.split() if by_word else [text]
        at, starts = start, []
        for part in parts:
            samples, _ = speak(part, words_per_minute=words_per_minute)
            first = round(at * rate)
            track[first : first + len(samples)] += samples[: len(track) - first] * _LEVEL
            starts.append(first / rate)
            at = (first + len(samples)) / rate + _WORD_PAUSE_SECONDS
        spoken.append(SpokenLine(text, tuple(starts), at - _WORD_PAUSE_SECONDS))
    if bleed:
        track += np.random.default_rng(7).normal(0.0, bleed, len(track)).astype(np.float32)
    _write_flac(path, ffmpeg, track, rate)
    return spoken


def _write_flac(path: Path, ffmpeg: str, track: np.ndarray, rate: int) -> None:
    pcm = (np.clip(track, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate),
         "-ac", "1", "-i", "pipe:0", "-ar", "44100", "-ac", "2", "-c:a", "flac",
         "-y", str(path)],
        input=pcm,
        check=True,
        timeout=60,
    )  # fmt: skip
