"""``benchmarks/versus_demucs.py --quick`` runs from end to end and prints its table.

A smoke test, never a timed one: it proves that the three command lines still run and
write what the benchmark checks (Demucs' CLI flags, karaoke-bot's config and output
names can change under it), not how fast they are. Tiny model, 10 s of real music, one
run each idle and one beside a busy-loop process (``--background-load 1``): about 50 s on
two busy cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("(a) demucs.separate", "(b) karaoke-bot fp32", "(c) karaoke-bot auto")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_comparison_prints_every_row_and_ratio(shared_music: Path, tmp_path: Path) -> None:
    figures = tmp_path / "versus.json"
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    completed = subprocess.run(
        [sys.executable, "benchmarks/versus_demucs.py", "--quick", "--runs", "1",
         "--input", str(shared_music / "lets-go-fishin.ogg"), "--json", str(figures),
         "--background-load", "1"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr[-3000:]
    table = completed.stdout
    for row in ROWS:
        assert any(line.startswith(row) for line in table.splitlines()), table
    assert "ratio b/a:" in table and "ratio c/a:" in table, table
    assert "Demucs CLI, effective options: device cpu, shifts 1" in table, table
    assert "\nidle:" in table and "\nbeside 1 busy-loop process(es):" in table, table
    assert "c/a beside 1 busy-loop process(es):" in table, table
    written = json.loads(figures.read_text())
    assert set(written["runs"]) == {"0", "1"}
    for by_contender in written["runs"].values():
        assert set(by_contender) == {"a", "b", "c"}
        assert all(len(run["seconds"]) == 1 for run in by_contender.values())
    assert set(written["ratios"]["0"]) == set(written["ratios"]["1"]) == {"b/a", "c/a"}
    assert set(written["load_drift"]) == {"1"}
    # The busy loops ended with their runs: none is left spinning.
    leftover = subprocess.run(["pgrep", "-f", "^" + sys.executable + " -c while True"], check=False)
    assert leftover.returncode == 1
