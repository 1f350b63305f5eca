"""An ffmpeg wrapper that logs every run, to count runs and how many overlapped; the same
around the header reader's Python (``separation.probe``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from separation import probe


def wrapped_ffmpeg(tmp_path: Path, real: str, *, pause: float = 0.0) -> tuple[str, Path]:
    """An ffmpeg that logs each run's start and end (with its arguments) around the real
    one, optionally pausing first so that overlapping runs are visible."""
    log = tmp_path / "ffmpeg.log"
    script = tmp_path / "ffmpeg-logged"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "start $$ $*" >> {log}\n'
        f"sleep {pause}\n"
        f'{real} "$@"\nrc=$?\n'
        f'echo "end $$" >> {log}\n'
        "exit $rc\n"
    )
    script.chmod(0o755)
    return str(script), log


def ffmpeg_runs(log: Path) -> list[str]:
    return [
        line.split(" ", 2)[2] for line in log.read_text().splitlines() if line.startswith("start")
    ]


def most_at_once(log: Path) -> int:
    running = most = 0
    for line in log.read_text().splitlines():
        running += 1 if line.startswith("start") else -1
        most = max(most, running)
    return most


def wrapped_header_reader(
    monkeypatch: pytest.MonkeyPatch, folder: Path, *, pause: float = 0.0
) -> Path:
    """Run the header checks through a logging (and pausing) wrapper of their Python,
    as ``wrapped_ffmpeg`` does for ffmpeg; returns the log (``ffmpeg_runs`` reads it)."""
    folder.mkdir()
    wrapper, log = wrapped_ffmpeg(folder, sys.executable, pause=pause)
    monkeypatch.setattr(probe, "READER_PYTHON", wrapper)
    return log
