"""An ffmpeg wrapper that logs every run, to count runs and how many overlapped."""

from __future__ import annotations

from pathlib import Path


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
