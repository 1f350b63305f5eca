"""Where a one-shot ``karaoke-bot separate`` spends its time (issue 26): start-up, warm-up,
decode, forward passes, encoding and writing, exit.

Runs the command as a user does (a whole process, a fresh data folder each time) on an
excerpt of real music with a random model of the exact ``htdemucs`` architecture in
Demucs' ``--repo`` layout (the race's set-up, ``versus_demucs.py``), with ``-v``, and
cuts each run's wall time at the lines the command logs:

- start-up: process start to the first log line (interpreter, imports, torch set-up);
- model load: the pool's "load cpu" figure; warm-up: its "warm-up" figure (none in a
  one-shot command);
- before the model: the header read, the song's extras and the decode (the pool's
  "decode" figure is the decode alone);
- model: the forward passes and their overlap-add ("model" in the song's phase line);
- encode/write: the outputs' encoding and the lossless stems ("encode", "stems");
- exit: from the pool's stop to the process's end (copying out, the cache summary,
  the interpreter's own shutdown).

    python benchmarks/oneshot_profile.py                    # 60 s excerpt, 3 runs
    python benchmarks/oneshot_profile.py --runs 1 --seconds 20
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from versus_demucs import SHARED_DATA, child_environment, cut_excerpt, write_config

from separation.audio.ffmpeg import find_ffmpeg

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
STARTED = re.compile(
    r"pool started: .*?; (load cpu (?P<load>[\d.]+) s)?(, warm-up cpu (?P<warm>[\d.]+) s)?"
)
PHASES = re.compile(r"\(\d+ s of audio\): (?P<phases>.*)$")
PHASE = re.compile(r"(\w+) ([\d.]+) s")
ROWS = ("start-up", "model load", "warm-up", "before the model", "decode", "model",
        "encode", "stems", "exit", "total")  # fmt: skip


def stamp(line: str) -> float:
    """The wall-clock time of a log line (the logging module's local-time format)."""
    match = STAMP.match(line)
    assert match is not None, line
    when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return when.timestamp()


def profile_run(command: list[str], folder: Path) -> dict[str, float]:
    """One run of ``command`` in ``folder``, cut into phases (seconds)."""
    started = time.time()
    completed = subprocess.run(
        command, cwd=folder, env=child_environment(), capture_output=True, text=True, check=False
    )
    ended = time.time()
    if completed.returncode != 0:
        raise SystemExit(f"the command failed:\n{completed.stderr[-3000:]}")
    lines = [line for line in completed.stderr.splitlines() if STAMP.match(line)]
    pool_started = next(line for line in lines if "pool started:" in line)
    song = next(line for line in lines if PHASES.search(line))
    stopped = next(line for line in lines if "pool stopped" in line)
    startup = STARTED.search(pool_started)
    assert startup is not None, pool_started
    phases = {name: float(value) for name, value in PHASE.findall(PHASES.search(song)["phases"])}
    in_song = sum(phases.values())
    return {
        "start-up": stamp(lines[0]) - started,
        "model load": float(startup["load"] or 0.0),
        "warm-up": float(startup["warm"] or 0.0),
        "before the model": stamp(song) - in_song - stamp(pool_started),
        **phases,
        "exit": ended - stamp(stopped),
        "total": ended - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=SHARED_DATA / "lets-go-fishin.ogg")
    parser.add_argument("--start", type=float, default=30.0, help="seconds into --input")
    parser.add_argument("--seconds", type=float, default=60.0, help="excerpt length")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny model (smoke test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oneshot-profile-") as folder:
        scratch = Path(folder)
        repo = scratch / "models"
        excerpt = scratch / "excerpt.mp3"
        cut_excerpt(find_ffmpeg(), args.input, args.start, args.seconds, excerpt)
        make = [sys.executable, str(Path(__file__).with_name("versus_demucs.py")),
                "--make-model", str(repo), *(["--quick"] if args.quick else [])]  # fmt: skip
        subprocess.run(make, check=True, capture_output=True, env=child_environment())
        runs = []
        for index in range(args.runs):
            run = scratch / f"run-{index}"
            run.mkdir()
            write_config(run, repo, "cpu")
            config, out = str(run / "config.toml"), str(run / "out")
            command = [sys.executable, "-m", "bot.cli.main", "separate", str(excerpt),
                       "--config", config, "-o", out, "-v"]  # fmt: skip
            runs.append(profile_run(command, run))
            print(f"  run {index + 1}: {runs[-1]['total']:.2f} s")
        model = "tiny" if args.quick else "htdemucs"
        print(f"\n{args.seconds:.0f} s excerpt of {args.input.name}, {model} architecture; "
              f"median (min) of {args.runs}:")  # fmt: skip
        for row in ROWS:
            values = [run.get(row, 0.0) for run in runs]
            print(f"  {row:<18}{statistics.median(values):7.2f} s  ({min(values):.2f})")


if __name__ == "__main__":
    main()
