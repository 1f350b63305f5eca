"""``benchmarks/video_vs_separation.py`` runs from end to end and prints its table.

A smoke test, never a timed one: a tiny model and a few seconds of real music prove that
the script still separates through the pool, renders every video it lists through the
pool's ``render`` and prints the table the note's figure is read from; the figures
themselves are not checked. About 30 s for both modes on two busy cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = ("no change", "key -2", "tempo 0.9")
PLATFORMS = ("telegram", "discord")


def run_benchmark(lyrics: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "video_vs_separation.py"),
         "--seconds", "16", "--model", "tiny", "--lyrics", lyrics],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout.splitlines()


def video_rows(lines: list[str]) -> dict[tuple[str, str], str]:
    """Each (control, platform) row of the table, by its first columns."""
    rows = {}
    for line in lines:
        for control in CONTROLS:
            for platform in PLATFORMS:
                if line.startswith(control) and line[len(control) :].split()[:1] == [platform]:
                    rows[control, platform] = line
    return rows


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lrc_in_the_tags_makes_every_video_with_word_timing(shared_music: Path) -> None:
    assert (shared_music / "lets-go-fishin.ogg").is_file()
    lines = run_benchmark("lrc")

    assert any(line.startswith("separation (") for line in lines), lines
    rows = video_rows(lines)
    assert set(rows) == {(c, p) for c in CONTROLS for p in PLATFORMS}, lines
    for row in rows.values():  # the words were read back from the tags, timed by word
        assert "MB" in row and " word " in row, row
    assert any(line.startswith("videos made 6 of 6; goal") for line in lines), lines


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_plain_words_give_a_video_or_an_honest_refusal_for_each_row(shared_music: Path) -> None:
    assert (shared_music / "lets-go-fishin.ogg").is_file()
    lines = run_benchmark("plain")

    rows = video_rows(lines)
    assert set(rows) == {(c, p) for c in CONTROLS for p in PLATFORMS}, lines
    for row in rows.values():  # a random model's vocals are noise: aligning may refuse
        assert "no video: " in row or " aligned " in row or " approximate " in row, row
    assert any(line.startswith("videos made ") for line in lines), lines
