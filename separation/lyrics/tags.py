"""The lyrics a song file's own tags carry, read with mutagen in a sandboxed child.

Tags come inside an upload, so they are read as the header is (``separation.audio.probe``):
by ``separation.lyrics.tag_reader`` in a child Python under the sandbox's memory, CPU and
wall-clock limits (``separation.audio.sandbox``), which writes what it found, bounded, as
JSON. mutagen is the tag library music players' taggers are built on (Picard, Quod Libet)
and reads every place lyrics are kept (the reader's docstring lists them); PyAV's metadata,
which the header reader already has, holds neither SYLT frames nor more than the first
kilobyte of a tag.

Every candidate found goes through ``separation.lyrics.clean`` and is parsed; the best
timed one wins (word times over line times over plain text, then the order the reader
found them: synced tags first). SYLT frames become enhanced LRC (``separation.lyrics.lrc
.to_lrc``). Reading tags is a bonus, never a reason to fail a song: a file mutagen cannot
read, a child that crashes or runs out of time, or lyrics that cannot be used give None
and a logged reason.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import InputLimitError, LyricsInputError
from separation.lyrics.clean import clean_lyrics_text
from separation.lyrics.limits import MAX_INPUT_BYTES
from separation.lyrics.lrc import to_lrc
from separation.lyrics.model import Lyrics, LyricsSource, Timing
from separation.lyrics.parse import parse_lyrics
from separation.lyrics.sylt import sylt_lines
from separation.lyrics.tag_reader import NO_MUTAGEN_EXIT, OUTPUT_BUDGET_BYTES
from separation.lyrics.timeline import timed_lines

logger = logging.getLogger(__name__)

_READER = Path(__file__).with_name("tag_reader.py")
TAG_READER_LIMITS = ChildLimits(
    wall_seconds=15.0, memory_bytes=512 * 2**20, file_bytes=2 * OUTPUT_BUDGET_BYTES
)
"""Reading tags takes a tenth of a second (Python and mutagen start); the memory is what a
Python needs plus an upload's largest tag, the file what the reader may write."""
_RANK = {Timing.WORD: 0, Timing.LINE: 1, Timing.NONE: 2}


@dataclass(frozen=True)
class _Candidate:
    tag: str
    text: str | None = None
    sylt: tuple[tuple[str, int], ...] = ()


def read_lyrics_tags(
    path: Path, *, limits: ChildLimits = TAG_READER_LIMITS, python: str = sys.executable
) -> str | None:
    """The best lyrics in ``path``'s tags, cleaned (LRC, enhanced LRC or plain text), or
    None when it has none that can be used. Never raises for what the file holds.

    ``python`` runs the reader; it must have mutagen.
    """
    try:
        candidates = _read(path, limits, python)
    except InputLimitError as exc:
        logger.info("lyrics tags of %s not read: %s", path.name, exc.detail)
        return None
    except OSError as exc:  # the reader's Python does not start: ours, logged loudly
        logger.warning("lyrics tag reader did not start (%s): %s", python, exc)
        return None
    best: tuple[int, str] | None = None
    for candidate in candidates:
        try:
            text = clean_lyrics_text(_as_text(candidate))
            lyrics = parse_lyrics(text, source=LyricsSource.TAGS)
        except LyricsInputError as exc:
            logger.info("lyrics tag %s of %s left out: %s", candidate.tag, path.name, exc)
            continue
        rank = _RANK.get(lyrics.timing, len(_RANK))
        if best is None or rank < best[0]:
            best = (rank, text)
    return None if best is None else best[1]


def _as_text(candidate: _Candidate) -> str:
    if candidate.text is not None:
        return candidate.text
    lines, timing = timed_lines(sylt_lines(candidate.sylt), duration_seconds=None)
    return to_lrc(Lyrics(tuple(lines), timing, LyricsSource.TAGS))


def _read(path: Path, limits: ChildLimits, python: str) -> list[_Candidate]:
    """What the reader found in ``path``'s tags ([] when it could not read them).

    Raises:
        InputLimitError: the reader ran past ``limits``.
    """
    with tempfile.TemporaryDirectory(prefix="lyrics-tags-") as folder:
        output = Path(folder) / "candidates.json"
        options = json.dumps({"max_chars": MAX_INPUT_BYTES + 1})
        # -P: the reader's folder is not put on sys.path (see separation.audio.probe).
        command = [python, "-P", str(_READER), str(path), str(output), options]
        run = run_sandboxed(command, limits, what="lyrics tags")
        if run.returncode == NO_MUTAGEN_EXIT:
            logger.warning("cannot read lyrics tags: mutagen is not installed for %s", python)
            return []
        if run.returncode != 0 or not output.is_file():
            logger.info("lyrics tag reader failed on %s (rc=%s): %s",
                        path.name, run.returncode, run.stderr[-300:])  # fmt: skip
            return []
        with output.open("rb") as handle:
            raw = handle.read(limits.file_bytes)
    try:
        found = json.loads(raw.decode("utf-8"))
        for note in found["notes"]:
            logger.info("lyrics tags of %s: %s", path.name, str(note)[:200])
        return [_candidate(item) for item in found["candidates"]]
    except (ValueError, TypeError, KeyError) as exc:
        logger.warning("lyrics tag reader gave no valid answer for %s: %s", path.name, exc)
        return []


def _candidate(item: Any) -> _Candidate:
    """One candidate of the reader's JSON, checked (``ValueError``/``TypeError`` if not one)."""
    tag = str(item["tag"])[:64]
    if "text" in item:
        if not isinstance(item["text"], str):
            raise TypeError("text is not a string")
        return _Candidate(tag, text=item["text"])
    entries = []
    for text, milliseconds in item["sylt"]:
        if not isinstance(text, str) or type(milliseconds) is not int or milliseconds < 0:
            raise TypeError("a SYLT entry is not (text, milliseconds)")
        entries.append((text, milliseconds))
    return _Candidate(tag, sylt=tuple(entries))
