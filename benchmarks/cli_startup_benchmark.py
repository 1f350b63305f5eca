"""How long the commands that need no model take to answer, against ``python -c pass``.

"Answers at once" is a promise of the command line (issue 23, point 13): ``--help`` and a
usage error should come back in well under 0.3 s, the store's commands (``users``,
``stats``, ``db``) and refusing a missing input in under 1 s. Interpreter start-up is part
of every figure, so ``python -c pass`` is measured in the same run as the reference: on a
slow or busy machine the difference to it is what the CLI itself costs.

Each command runs in a fresh interpreter in an empty temporary folder (no config file, its
own data folder), ``--repeat`` times; the median wall time is printed, and the median CPU
time of the child (user + system), which a machine shared with other work inflates less.
``--code DIR`` measures another checkout (``git archive`` of an older commit) in the same
run, so before and after are compared under the same load.

    python benchmarks/cli_startup_benchmark.py
    python benchmarks/cli_startup_benchmark.py --repeat 9 --code /tmp/before
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "--help": ["-m", "bot.cli.main", "--help"],
    "separate --help": ["-m", "bot.cli.main", "separate", "--help"],
    "usage error (--format ogg)": ["-m", "bot.cli.main", "separate", "a.mp3", "--format", "ogg"],
    "separate missing.mp3": ["-m", "bot.cli.main", "separate", "missing.mp3"],
    "users show telegram:1": ["-m", "bot.cli.main", "users", "show", "telegram:1"],
    "stats": ["-m", "bot.cli.main", "stats"],
    "db upgrade": ["-m", "bot.cli.main", "db", "upgrade"],
}
"""Label -> interpreter arguments. ``db upgrade`` runs first in each round (see below)."""


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_once(arguments: list[str], folder: Path, code: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``python ARGUMENTS`` in ``folder``."""
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    # That checkout's code, even where the editable install points at another one.
    environment["PYTHONPATH"] = str(code)
    environment["KARAOKE_DATA_DIR"] = str(folder / "data")
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *arguments],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started, _cpu_seconds() - cpu_before


def measure(repeat: int, code: Path) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) time of each command, in seconds.

    The commands take turns within each round, so a burst of load elsewhere on the machine
    slows all of them alike instead of one command's every run. ``db upgrade`` goes first,
    so ``users``/``stats`` time a database that exists (the usual case), not its creation.
    """
    order = ["db upgrade", *(label for label in COMMANDS if label != "db upgrade")]
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as name:
        folder = Path(name)
        for _ in range(repeat):
            for label in order:
                times[label].append(_time_once(COMMANDS[label], folder, code))
    return {
        label: (
            statistics.median(wall for wall, _ in runs),
            statistics.median(cpu for _, cpu in runs),
        )
        for label, runs in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    parser.add_argument(
        "--code", type=Path, action="append", help="a checkout to measure (repeatable)"
    )
    args = parser.parse_args()
    print(f"median of {args.repeat} runs, seconds (python {sys.version.split()[0]})")
    for code in args.code or [ROOT]:
        medians = measure(args.repeat, code)
        wall_pass, cpu_pass = medians["python -c pass"]
        print(f"{code}:\n  {'command':<28} {'wall':>6} {'(+ pass)':>9} {'CPU':>6} {'(+ pass)':>9}")
        for label, (wall, cpu) in medians.items():
            print(
                f"  {label:<28} {wall:6.3f} {wall - wall_pass:+9.3f} "
                f"{cpu:6.3f} {cpu - cpu_pass:+9.3f}"
            )


if __name__ == "__main__":
    main()
