"""``oneshot_profile.py`` and ``loop_delay_benchmark.py`` (issue 26) run from end to end.

Smoke tests, never timed ones: tiny models and a few seconds of real music prove that
the scripts still find the log lines and pool settings they measure by (a renamed log
line or setting would break them), not how fast anything is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _run(*argv: str) -> str:
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    completed = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=200, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_the_one_shot_profile_cuts_a_run_into_its_phases(shared_music: Path) -> None:
    table = _run(
        "benchmarks/oneshot_profile.py", "--quick", "--runs", "1", "--seconds", "8",
        "--input", str(shared_music / "lets-go-fishin.ogg"),
    )  # fmt: skip
    rows = dict(re.findall(r"^  ([a-z -]+?)\s+([\d.]+) s  \(", table, re.MULTILINE))
    assert set(rows) == {
        "start-up", "model load", "warm-up", "before the model", "decode", "model",
        "encode", "stems", "exit", "total",
    }  # fmt: skip
    assert float(rows["warm-up"]) == 0.0  # a one-shot command warms nothing up
    assert float(rows["model"]) > 0 and float(rows["encode"]) > 0
    parts = sum(float(value) for row, value in rows.items() if row != "total")
    assert parts <= float(rows["total"]) + 0.05


def test_the_loop_delay_benchmark_compares_every_scheduling(shared_music: Path) -> None:
    table = _run(
        "benchmarks/loop_delay_benchmark.py", "--model", "tiny", "--song-seconds", "4",
        "--rounds", "1", "--background-load", "1",
    )  # fmt: skip
    rows = re.findall(r"^\s+(\d)  (normal|lowered|batch)\s+[\d.]+", table, re.MULTILINE)
    assert sorted(rows) == sorted(
        (load, mode) for load in ("0", "1") for mode in ("normal", "lowered", "batch")
    )
    leftover = subprocess.run(["pgrep", "-f", "^" + sys.executable + " -c while True"], check=False)
    assert leftover.returncode == 1  # the busy loops ended with their runs
