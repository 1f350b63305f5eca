"""How the worker thread's scheduling trades the event loop's delay against the model's
share of the CPU (issue 26): nice +5 (the old default), normal, and ``SCHED_BATCH``.

One song through a ``SeparationPool`` per run, with a random model of the exact
``htdemucs`` architecture (weights do not change cost), idle and with
``--background-load`` busy-loop processes beside it. During each run the event loop
sleeps 10 ms over and over and records how late each wake-up was: a chat handler waits
that long behind a forward pass. The song's wall time says how much of the CPU the model
got. Runs are interleaved (every mode in turn, the order rotated each round) and the
table gives medians over rounds: wake-up delay p50, p99 and worst, and the song's time.

    python benchmarks/loop_delay_benchmark.py                       # 30 s song, 2 rounds
    python benchmarks/loop_delay_benchmark.py --background-load 2 --rounds 3
    python benchmarks/loop_delay_benchmark.py --batch-size 4 --background-load 0
    python benchmarks/loop_delay_benchmark.py --model tiny --song-seconds 5 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from background_load import busy_loops
from pool_benchmark import MODEL_KINDS, MUSIC, cut, pool_config, random_model, run_pool_with_delays

from separation.audio.ffmpeg import find_ffmpeg
from separation.model.loading import LoadedModel
from separation.model.workers import WorkerPriority


@dataclasses.dataclass(frozen=True)
class Run:
    wall_seconds: float
    delays: list[float]
    """How late each 10 ms wake-up of the event loop was, in seconds."""

    def delay_ms(self, quantile: float) -> float:
        ordered = sorted(self.delays)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def one_song(
    model: LoadedModel, song: Path, scratch: Path, priority: WorkerPriority, batch_size: int
) -> Run:
    """``song`` alone through a pool whose worker is scheduled as ``priority``."""
    config = pool_config(scratch, find_ffmpeg(), model.device, batch_size)
    config = dataclasses.replace(config, worker_priority=priority)
    wall, delays = asyncio.run(run_pool_with_delays(config, model, [song]))
    return Run(wall, delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_KINDS, default="htdemucs")
    parser.add_argument("--song-seconds", type=float, default=30.0)
    parser.add_argument(
        "--background-load",
        type=int,
        default=2,
        metavar="N",
        help="busy-loop processes in the loaded runs (0: idle runs only)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--batch-size", type=int, default=1, help="segments per forward pass (nice +5 was "
        "measured against loop delays above 100 ms at batch size 4)",
    )  # fmt: skip
    parser.add_argument("--modes", default=",".join(p.value for p in WorkerPriority))
    args = parser.parse_args()
    modes = [WorkerPriority(mode) for mode in args.modes.split(",")]
    loads = sorted({0, args.background_load})
    with tempfile.TemporaryDirectory(prefix="loop-delay-") as folder:
        scratch = Path(folder)
        model = random_model(args.model, scratch / "models")
        song = cut(find_ffmpeg(), MUSIC[0], 30.0, args.song_seconds, scratch / "song.flac")
        print(
            f"{args.song_seconds:.0f} s song, {args.model} architecture, "
            f"torch {torch.get_num_threads()} thread(s), batch size {args.batch_size}; "
            f"{args.rounds} round(s)"
        )
        runs: dict[tuple[int, WorkerPriority], list[Run]] = {}
        for round_index in range(args.rounds):
            order = modes[round_index % len(modes) :] + modes[: round_index % len(modes)]
            for load in loads:
                with busy_loops(load):
                    for mode in order:
                        run = one_song(model, song, scratch, mode, args.batch_size)
                        runs.setdefault((load, mode), []).append(run)
                        print(
                            f"  round {round_index + 1}, load {load}, {mode.value:<8} "
                            f"{run.wall_seconds:6.2f} s, loop delay p99 "
                            f"{run.delay_ms(0.99):6.1f} ms, worst {run.delay_ms(1.0):6.1f} ms"
                        )
        print(
            f"\n{'load':>4}  {'worker':<8} {'song s':>7} {'min s':>7} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'worst ms':>8}  {'slowdown':>8}"
        )
        for load in loads:
            for mode in modes:
                done = runs[(load, mode)]
                wall = statistics.median(r.wall_seconds for r in done)
                idle = statistics.median(r.wall_seconds for r in runs[(0, mode)])
                print(
                    f"{load:>4}  {mode.value:<8} {wall:7.2f} "
                    f"{min(r.wall_seconds for r in done):7.2f} "
                    f"{statistics.median(r.delay_ms(0.5) for r in done):7.1f} "
                    f"{statistics.median(r.delay_ms(0.99) for r in done):7.1f} "
                    f"{statistics.median(r.delay_ms(1.0) for r in done):8.1f}  "
                    f"{wall / idle:7.2f}x"
                )


if __name__ == "__main__":
    main()
