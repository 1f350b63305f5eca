"""Word times from the offline speech model: pocketsphinx's forced alignment.

pocketsphinx's PyPI wheel carries its en-US acoustic model and pronouncing dictionary,
so English words can be aligned with no download and no network. Given the words of a
stretch of audio, the decoder finds where each one is (``Decoder.set_align_text``).

It runs in a child process (``separation.lyrics.speech_child``) under the sandbox's
limits (``separation.audio.sandbox``): a deadline of a fraction of the song's length,
CPU time, memory. Whatever goes wrong there (no pocketsphinx, a crash, a limit) ends
as ``None`` here and the caller times the lines on the voice's energy instead: the
speech model is an improvement, never a requirement.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from separation.audio.ffmpeg import stderr_tail
from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import InputLimitError

logger = logging.getLogger(__name__)

WordTimes = list[tuple[float, float] | None]
"""(start, end) of each word of a group; None for a word the dictionary lacks."""

_CHILD = "separation.lyrics.speech_child"
_DEADLINE_BASE_SECONDS = 15.0
_DEADLINE_SHARE = 0.25
"""The child's deadline grows by this share of the song's length (measured: about
0.02 of it on this machine, model loading included)."""
_MEMORY_BYTES = 1536 * 2**20
_ANSWER_MAX_BYTES = 8 * 2**20
_ENGLISH_SPELLING = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class WordGroup:
    """Words sung between ``start`` and ``end`` seconds (a line, or lines in one phrase)."""

    start: float
    end: float
    words: tuple[str, ...]
    """As written in the lyrics (with punctuation and spaces)."""
    voice_start: float
    """Where the energy placement says the group's singing begins (after ``start``)..."""
    voice_end: float
    """...and ends (before ``end``)."""


@dataclass(frozen=True)
class SpeechAnswer:
    """What the speech model made of the groups."""

    groups: list[WordTimes | None]
    """Each group's word times; None where the search found no path through its words."""
    known_share: float
    """The share of all words the dictionary knows (low: not English)."""


def speech_model_available() -> bool:
    """Whether pocketsphinx is installed (it is an optional dependency at run time)."""
    return importlib.util.find_spec("pocketsphinx") is not None


def dictionary_spelling(word: str) -> str:
    """``word`` as the dictionary spells it ("Don't," -> "don't"); "" for a word it cannot
    hold (digits, letters outside English: the caller treats it as unknown)."""
    typed = word.lower().replace("\u2019", "'")  # a typographic apostrophe: "don’t"
    letters = "".join(character for character in typed if not _is_punctuation(character))
    letters = letters.strip("'")
    return letters if _ENGLISH_SPELLING.fullmatch(letters) else ""


def _is_punctuation(character: str) -> bool:
    return not (character.isalnum() or character == "'")


def align_groups(
    samples: np.ndarray, sample_rate: int, groups: Sequence[WordGroup], *, duration_seconds: float
) -> SpeechAnswer | None:
    """The groups' word times; None when the speech model cannot run (not installed,
    failed, stopped by a limit)."""
    if not groups or not speech_model_available():
        return None
    limits = ChildLimits(
        wall_seconds=_DEADLINE_BASE_SECONDS + _DEADLINE_SHARE * duration_seconds,
        memory_bytes=_MEMORY_BYTES,
    )
    with tempfile.TemporaryDirectory(prefix="align-") as folder:
        job_path = _write_job(Path(folder), samples, sample_rate, groups)
        command = [sys.executable, "-m", _CHILD, str(job_path)]
        try:
            run = run_sandboxed(command, limits, what="align words")
        except InputLimitError as error:
            logger.warning("word alignment stopped (%s); timing lines on the voice", error.detail)
            return None
        if run.returncode != 0:
            logger.warning("word alignment failed: %s", stderr_tail(run.stderr))
            return None
        logger.debug("word alignment: %.2f s wall, %.2f s CPU", run.wall_seconds, run.cpu_seconds)
        return _read_answer(job_path.with_name("answer.json"), groups)


def _read_answer(path: Path, groups: Sequence[WordGroup]) -> SpeechAnswer | None:
    """The child's answer, if it is one (our own child, but a bug there must not become
    a crash here: the lines are then timed on the energy)."""
    try:
        if path.stat().st_size > _ANSWER_MAX_BYTES:
            raise ValueError("answer too large")
        answer = json.loads(path.read_text(encoding="utf-8"))
        times = [_word_times(group) for group in answer["groups"]]
        known = sum(int(count) for count in answer["known"])
        if len(times) != len(groups) or any(
            found is not None and len(found) != len(group.words)
            for found, group in zip(times, groups, strict=True)
        ):
            raise ValueError("answer does not match the question")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        logger.warning("word alignment answered nothing usable: %s", error)
        return None
    words = sum(len(group.words) for group in groups)
    return SpeechAnswer(groups=times, known_share=known / max(1, words))


def _write_job(
    folder: Path, samples: np.ndarray, sample_rate: int, groups: Sequence[WordGroup]
) -> Path:
    audio_path = folder / "vocals.f32"
    samples.astype("<f4", copy=False).tofile(audio_path)
    job = {
        "audio": str(audio_path),
        "sample_rate": sample_rate,
        "groups": [
            {
                "start": group.start,
                "end": group.end,
                "words": [dictionary_spelling(word) for word in group.words],
            }
            for group in groups
        ],
    }
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    return job_path


def _word_times(group: list[list[float] | None] | None) -> WordTimes | None:
    if group is None:
        return None
    return [None if pair is None else (float(pair[0]), float(pair[1])) for pair in group]
