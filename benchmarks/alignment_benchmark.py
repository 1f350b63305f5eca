"""How well, and how fast, plain lyrics are timed on a vocals stem (issue 24).

The stem is speech by espeak-ng at known times (``tests/support/sung.py``), built to
last ``--minutes`` (4 by default): lines of a short verse repeated, each line spoken
word by word (so every word's start is known), with pauses between lines. Both ways of
timing are run on it, and the errors against the truth and the time each took are
printed:

* ``energy``: lines on the sung phrases (``use_speech_model=False``);
* ``speech``: pocketsphinx's forced alignment inside those phrases.

    PYTHONPATH=$PWD python benchmarks/alignment_benchmark.py
    PYTHONPATH=$PWD python benchmarks/alignment_benchmark.py --minutes 1 --connected
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from separation.lyrics.alignment import align_lyrics
from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, Timing
from tests.support.sung import SpokenLine, sung_stem

VERSE = (
    "the river runs beneath the silver moon",
    "and every night I hear it calling me",
    "hold on to the light before it goes",
    "we were young and we were free",
    "dancing in the summer rain",
    "nothing ever stays the same",
)
LINE_SECONDS = 4.5
"""Time from one line's start to the next (6.5 s when the words are drawn out)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument(
        "--connected", action="store_true", help="speak whole lines (only line starts known)"
    )
    parser.add_argument("--words-per-minute", type=int, default=150, help="80: slow singing")
    parser.add_argument("--bleed", type=float, default=0.0, help="noise under the voice (RMS)")
    arguments = parser.parse_args()
    seconds = arguments.minutes * 60
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    every = LINE_SECONDS if arguments.words_per_minute >= 120 else 6.5
    count = int((seconds - 2.0) // every)
    plan = [
        (1.0 + index * every, text)
        for index, text in zip(range(count), itertools.cycle(VERSE), strict=False)
    ]
    with tempfile.TemporaryDirectory() as folder:
        stem = Path(folder) / "vocals.flac"
        truth = sung_stem(
            stem, ffmpeg, plan, seconds=seconds, by_word=not arguments.connected,
            words_per_minute=arguments.words_per_minute, bleed=arguments.bleed,
        )  # fmt: skip
        lyrics = Lyrics(tuple(LyricLine(text) for _, text in plan), Timing.NONE, LyricsSource.USER)
        print(
            f"{seconds:.0f} s stem, {len(plan)} lines, {sum(len(t.split()) for _, t in plan)} words"
        )
        for name, speech_model in (("energy", False), ("speech", True)):
            started, cpu = time.monotonic(), _cpu_seconds()
            result = align_lyrics(
                lyrics, stem, ffmpeg=ffmpeg, duration_seconds=seconds, use_speech_model=speech_model
            )
            wall, used = time.monotonic() - started, _cpu_seconds() - cpu
            share = wall / seconds
            print(f"{name}: {result.timing}, {wall:.2f} s wall ({share:.3f} of the song), ", end="")
            print(f"{used:.2f} s CPU")
            _errors(result, truth, words=not arguments.connected)


def _errors(result: Lyrics, truth: list[SpokenLine], *, words: bool) -> None:
    lines = np.abs(
        np.subtract([line.start or 0.0 for line in result.lines], [t.start for t in truth])
    )
    print(f"  line start error: mean {lines.mean():.3f} s, max {lines.max():.3f} s")
    if words:
        found = [word.start for line in result.lines for word in line.words]
        known = [start for line in truth for start in line.word_starts]
        errors = np.abs(np.subtract(found, known))
        print(
            f"  word start error: mean {errors.mean():.3f} s, max {errors.max():.3f} s, "
            f"p95 {np.percentile(errors, 95):.3f} s"
        )


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
