"""The egress benchmark cannot rot: a small download through it is a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_egress_benchmark_prints_both_ways_and_the_overhead() -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/egress_benchmark.py", "--megabytes", "2", "--runs", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0] == "2 MB over plain HTTP on 127.0.0.1, median of 1"
    assert [line.split()[0] for line in lines[2:]] == ["direct", "proxied", "overhead"]
    assert "Traceback" not in run.stderr
