"""``karaoke-bot separate --video`` with ``backend.kind = "distributed"``: the song is
separated by a worker of the fleet, and so is its karaoke video, rendered from the stems
the worker keeps in the shared cache, in the key asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fleet import ROOT, Fleet
from tests.support.media import media_facts

SYNCED = "[00:00.50]Hello little\n[00:02.00]world of songs\n"
SEPARATIONS = ": attempt 1 on "
"""A worker's log line for each song it runs the model on."""


def test_separate_video_runs_through_the_fleet(fleet: Fleet, song, tmp_path: Path, ffmpeg):
    lyrics = tmp_path / "cli.lrc"
    lyrics.write_text(SYNCED)
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "separate", str(song(5, "cli")), "--video",
         "--lyrics", str(lyrics), "--key", "-1", "-o", str(tmp_path / "out"),
         "--config", str(fleet.config("cli"))],
        capture_output=True, text=True, timeout=180, check=False, cwd=fleet.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    written = sorted(Path(line) for line in completed.stdout.split("\n") if line)
    assert [path.name for path in written] == [
        "cli - instrumental (key -1).wav",
        "cli - karaoke (key -1).mp4",
        "cli - vocals (key -1).wav",
    ]
    seconds, streams = media_facts(written[1], ffmpeg)
    assert seconds == pytest.approx(5, abs=0.15)
    assert "Video: h264" in streams and "Audio: aac" in streams
    assert f"the video's words are from {lyrics}" in completed.stderr
    assert fleet.worker_log(worker).count(SEPARATIONS) == 1  # the model ran once
