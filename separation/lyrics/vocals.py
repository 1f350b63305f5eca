"""The separated vocals stem as mono 16 kHz samples, for timing lyrics on it.

16 kHz mono is what the speech model (pocketsphinx's en-US acoustic model) was trained
on, and it is plenty for finding where a voice is. The stem is our own file (the pool
wrote it), but it still goes through ``separation.audio.sandbox``: the run has a
deadline, a memory limit and a cap on what it writes, so a damaged stem costs seconds.

Memory is bounded by the song limit: ffmpeg stops after ``duration_seconds`` plus one
second (``-t``), a 4-minute song is 15 MB of float32, and a stem longer than
:data:`MAX_SECONDS` is refused before ffmpeg starts.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from separation.audio.ffmpeg import stderr_tail
from separation.audio.ffmpeg_args import command_line, file_url, input_stream
from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import InputLimitError, SeparationError

SAMPLE_RATE = 16_000
"""Samples per second of what :func:`read_vocals` returns."""
MAX_SECONDS = 3600.0
"""Longest stem read (230 MB of samples): far past any song limit, so only a bug gets here."""
_BYTES_PER_SAMPLE = 4
_MEMORY_BYTES = 512 * 2**20
_DEADLINE_BASE_SECONDS = 30.0
_DEADLINE_PER_AUDIO_SECOND = 0.1


class VocalsReadError(SeparationError):
    """The vocals stem could not be read: ours (the pool wrote it), not the user's."""

    kind = "vocals_read"


def read_vocals(path: Path, *, ffmpeg: str, duration_seconds: float) -> np.ndarray:
    """The stem at ``path`` as mono float32 samples at :data:`SAMPLE_RATE`.

    Args:
        path: the vocals stem (FLAC or WAV, as the pool keeps it).
        ffmpeg: the ffmpeg executable.
        duration_seconds: the song's length; at most one second more is read.

    Raises:
        VocalsReadError: longer than :data:`MAX_SECONDS`, or ffmpeg failed on it or was
            stopped by a limit.
    """
    if not 0 < duration_seconds <= MAX_SECONDS:
        raise VocalsReadError(f"cannot time lyrics on a {duration_seconds:.0f} s stem")
    cap_seconds = duration_seconds + 1.0
    raw_bytes = math.ceil(cap_seconds * SAMPLE_RATE) * _BYTES_PER_SAMPLE
    limits = ChildLimits(
        wall_seconds=_DEADLINE_BASE_SECONDS + _DEADLINE_PER_AUDIO_SECOND * cap_seconds,
        memory_bytes=_MEMORY_BYTES,
        file_bytes=raw_bytes + 2**20,
    )
    with tempfile.TemporaryDirectory(prefix="vocals-") as folder:
        raw_path = Path(folder) / "vocals.f32"
        decoded = input_stream(file_url(path))["a:0"].output(
            file_url(raw_path), f="f32le", ac="1", ar=str(SAMPLE_RATE), t=f"{cap_seconds:.3f}"
        )
        command = command_line(
            ffmpeg, decoded, "-hide_banner", "-nostdin", "-loglevel", "error", overwrite=True
        )
        try:
            run = run_sandboxed(command, limits, what="read vocals")
        except InputLimitError as error:
            # Our own stem, not an upload: a limit here is our failure, not the user's.
            raise VocalsReadError(f"reading {path.name} stopped: {error.detail}") from error
        if run.returncode != 0 or not raw_path.exists():
            raise VocalsReadError(f"ffmpeg could not read {path.name}: {stderr_tail(run.stderr)}")
        samples = np.fromfile(raw_path, dtype="<f4")
    finite: np.ndarray = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    return finite
