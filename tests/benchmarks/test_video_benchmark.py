"""The video benchmark cannot rot: a short run of it is a test (its figures are not
checked, only that it renders every case and writes the still)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.media import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_renders_every_case_and_the_still(tmp_path: Path) -> None:
    assert (SHARED_DATA / "lets-go-fishin.ogg").is_file()
    still = tmp_path / "still.png"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "video_benchmark.py"),
         "--seconds", "16", "--still", str(still)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    rows = [line.split()[:2] for line in completed.stdout.splitlines()]
    for chat in ("telegram", "discord"):
        for background in ("colour", "cover"):
            assert [chat, background] in rows
    assert still.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
