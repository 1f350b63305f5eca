"""How long the commands that need no model take to answer, against ``python -c pass``.

"Answers at once" is a promise of the command line (issue 23, point 13): ``--help`` and a
usage error should come back in well under 0.3 s, the store's commands (``users``,
``stats``, ``db``) and refusing a missing input in under 1 s. Interpreter start-up is part
of every figure, so ``python -c pass`` is measured in the same run as the reference: on a
slow or busy machine the difference to it is what the CLI itself costs.

Each command runs in a fresh interpreter in an empty temporary folder (no config file, its
own data folder), ``--repeat`` times; the median wall time is printed.

    python benchmarks/cli_startup_benchmark.py
    python benchmarks/cli_startup_benchmark.py --repeat 9
"""

from __future__ import annotations

import argparse
import os
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


def _time_once(arguments: list[str], folder: Path) -> float:
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    # This checkout's code, even where the editable install points at another one.
    environment["PYTHONPATH"] = str(ROOT)
    environment["KARAOKE_DATA_DIR"] = str(folder / "data")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *arguments],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def measure(repeat: int) -> dict[str, float]:
    """Median wall time of each command, in seconds.

    The commands take turns within each round, so a burst of load elsewhere on the machine
    slows all of them alike instead of one command's every run. ``db upgrade`` goes first,
    so ``users``/``stats`` time a database that exists (the usual case), not its creation.
    """
    order = ["db upgrade", *(label for label in COMMANDS if label != "db upgrade")]
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as name:
        folder = Path(name)
        for _ in range(repeat):
            for label in order:
                times[label].append(_time_once(COMMANDS[label], folder))
    return {label: statistics.median(times[label]) for label in COMMANDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    args = parser.parse_args()
    medians = measure(args.repeat)
    reference = medians["python -c pass"]
    print(f"median of {args.repeat} runs, seconds (python {sys.version.split()[0]})")
    for label, seconds in medians.items():
        print(f"  {label:<28} {seconds:6.3f}   (+{seconds - reference:.3f} over python -c pass)")


if __name__ == "__main__":
    main()
