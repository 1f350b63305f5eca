"""The child process that runs pocketsphinx's forced alignment (``python -m`` this).

pocketsphinx is C code inside this process: a wedged or pathological search could not
be stopped from a thread. So the parent (``separation.lyrics.speech``) runs it here,
under the sandbox's deadline, CPU and memory limits, and reads one JSON answer back.

Input (the one argument, a JSON file): ``{"audio": path of mono float32 samples,
"sample_rate": 16000, "groups": [{"start": s, "end": e, "words": [spelling or "",
...]}, ...]}``; output (the same folder, ``answer.json``): ``{"known": [words the
dictionary knows, per group], "groups": [[[start, end] or null per word] or null]}`` in
seconds of the song. A group is null when the search found no path through all of its
words; a word is null when the dictionary does not know it (the parent places it
between its neighbours).

Each group is aligned on its own (a line, or the lines sung in one phrase, with a little
margin): measured here, one search over a whole song loses its way (the final state is
pruned away), while a search over a few seconds holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pocketsphinx import Decoder

FRAMES_PER_SECOND = 100
_NOT_WORDS = ("<s>", "</s>", "<sil>", "[NOISE]", "<unk>")
_SEARCH = {"bestpath": False, "dither": True}
"""Measured on espeak-ng speech: the lattice's best-path pass often loses the final
state of the grammar (the search then answers a prefix of the words, or nothing), and
the plain Viterbi answer does not."""
_NOISE_FLOOR = 3.0
"""Standard deviation (16-bit steps, about -80 dBFS) of the noise added under the audio:
on digital silence (a stem's muted stretches) the features are degenerate and the search
failed on a third of the lines; with a floor of noise, on none."""


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    samples = np.fromfile(job["audio"], dtype="<f4")
    sample_rate = int(job["sample_rate"])
    decoder = Decoder(lm=None, loglevel="FATAL", samprate=sample_rate, **_SEARCH)
    known = [_known(decoder, group["words"]) for group in job["groups"]]
    answers = [
        _align(decoder, samples, sample_rate, group, indices)
        for group, indices in zip(job["groups"], known, strict=True)
    ]
    answer = {"known": [len(indices) for indices in known], "groups": answers}
    Path(job_path).with_name("answer.json").write_text(json.dumps(answer), encoding="utf-8")
    return 0


def _known(decoder: Any, spellings: list[str]) -> list[int]:
    """Where in ``spellings`` the words are that the dictionary knows."""
    return [
        index
        for index, spelling in enumerate(spellings)
        if spelling and decoder.lookup_word(spelling) is not None
    ]


def _align(
    decoder: Any, samples: np.ndarray, sample_rate: int, group: dict[str, Any], known: list[int]
) -> list[Any] | None:
    spellings: list[str] = group["words"]
    if not known:
        return None
    start = max(0, int(group["start"] * sample_rate))
    end = min(len(samples), int(group["end"] * sample_rate))
    noise = np.random.default_rng(0).normal(0.0, _NOISE_FLOOR, end - start)
    pcm = (np.clip(samples[start:end] * 32767 + noise, -32768, 32767)).astype("<i2").tobytes()
    try:
        decoder.set_align_text(" ".join(spellings[index] for index in known))
        decoder.start_utt()
        decoder.process_raw(pcm, no_search=False, full_utt=True)
        decoder.end_utt()
        segments = [segment for segment in decoder.seg() or () if segment.word not in _NOT_WORDS]
    except RuntimeError:
        return None
    if len(segments) != len(known):
        return None
    offset = start / sample_rate
    times: list[list[float] | None] = [None] * len(spellings)
    for index, segment in zip(known, segments, strict=True):
        times[index] = [
            offset + segment.start_frame / FRAMES_PER_SECOND,
            offset + (segment.end_frame + 1) / FRAMES_PER_SECOND,
        ]
    return times


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
