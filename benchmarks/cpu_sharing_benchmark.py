"""The model step and ffmpeg on the same cores: how they should share
(``separation.cpu_budget``).

1. Contention: forward passes of the exact ``htdemucs`` architecture (random weights) in
   the configured precision, on a thread at the worker's priority, while two MP3
   encoders write a 4-minute song. Three ways to share: both encoders at normal
   priority beside all torch threads (what the pool did before), both encoders niced
   to 10, and the budget's way (one encoder at a time, torch one thread fewer while it
   runs). Prints how long the encoding took and how much model time was lost.
2. The pool: N songs submitted together (or one every ``--stagger-seconds``), with the
   budget and without it (a plan with unlimited slots and a fixed thread count: the old
   behaviour); total wall time and each song's latency.

    python benchmarks/cpu_sharing_benchmark.py
    python benchmarks/cpu_sharing_benchmark.py --songs 3 --song-seconds 60 --precision fp32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pool_benchmark import LIMITS, MUSIC, cut, random_htdemucs

from separation.audio.ffmpeg import find_ffmpeg
from separation.cpu_budget import CpuPlan, available_cores
from separation.jobs import SeparationRequest
from separation.model.allocator import keep_memory_mapped
from separation.model.loading import LoadedModel
from separation.model.precision import forward_precision
from separation.pool import PoolConfig, SeparationPool

WORKER_NICENESS = 5  # separation.model.workers lowers its thread's priority by this much


def forward_timer(model: LoadedModel) -> Callable[[], float]:
    """A function timing one forward pass of one segment (the worker's unit of work)."""
    length = int(model.segments[0] * model.samplerate)
    segment = torch.randn(1, model.audio_channels, length)

    def forward() -> float:
        started = time.perf_counter()
        with torch.inference_mode(), forward_precision(model.precision, model.device):
            model.sub_models[0](segment)
        return time.perf_counter() - started

    return forward


def encoders(ffmpeg: str, raw: Path, out: Path, prefix: list[str], serial: bool) -> list[str]:
    commands = [
        " ".join([*prefix, ffmpeg, "-v", "error", "-f", "f32le", "-ar", "44100", "-ac", "2",
                  "-i", str(raw), "-c:a", "libmp3lame", "-b:a", "320k", "-y",
                  str(out / f"out-{index}.mp3")])
        for index in range(2)
    ]  # fmt: skip
    return [" && ".join(commands)] if serial else commands


def contention(model: LoadedModel, ffmpeg: str, scratch: Path) -> None:
    threads = torch.get_num_threads()
    print(f"\n== contention: {model.precision} forward passes while 2 MP3 encoders run ==")
    raw = scratch / "song.f32"
    subprocess.run(
        [ffmpeg, "-v", "error", "-stream_loop", "-1", "-i", str(MUSIC[0]), "-t", "240",
         "-f", "f32le", "-ar", "44100", "-ac", "2", "-y", str(raw)],
        check=True,
    )  # fmt: skip
    forward = forward_timer(model)
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    forward()  # first call: kernel selection
    started = time.perf_counter()
    for command in encoders(ffmpeg, raw, scratch, [], serial=False):
        subprocess.run(command, shell=True, check=True)
    print(f"encoders alone, one after the other: {time.perf_counter() - started:5.1f} s")
    ways = [
        ("both at nice 0, torch all threads", ["nice", "-n", "0"], False, threads),
        ("both at nice 10, torch all threads", ["nice", "-n", "10"], False, threads),
        ("budget: one at a time, torch one fewer", ["nice", "-n", "0"], True, max(1, threads - 1)),
    ]
    for label, prefix, serial, during in ways:
        torch.set_num_threads(threads)
        alone = statistics.mean(forward() for _ in range(2))
        torch.set_num_threads(during)
        started = time.perf_counter()
        processes = [
            subprocess.Popen(command, shell=True)
            for command in encoders(ffmpeg, raw, scratch, prefix, serial)
        ]
        passes = []
        while any(process.poll() is None for process in processes):
            passes.append(forward())
        encoding = time.perf_counter() - started
        lost = sum(passes) - len(passes) * alone
        print(
            f"{label:40s} encoding {encoding:5.1f} s; {len(passes):2d} passes of "
            f"{statistics.mean(passes):.2f} s (alone {alone:.2f} s): model time lost {lost:5.1f} s"
        )
    torch.set_num_threads(threads)
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 0)


async def through_pool(
    config: PoolConfig, model: LoadedModel, songs: list[Path], stagger: float
) -> list[float]:
    """Each song's seconds from the first submission to done (song i submitted after
    ``i * stagger`` seconds: its decode and the encoding of earlier ones meet the model
    step of others)."""
    pool = SeparationPool(config, lambda device: model)
    await pool.start()
    started = time.perf_counter()
    latencies: list[float] = []

    async def one(index: int, song: Path) -> None:
        await asyncio.sleep(index * stagger)
        handle = await pool.submit(SeparationRequest(user_ref=f"user-{index}", input_path=song))
        await handle.result()
        latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(index, song) for index, song in enumerate(songs)))
    await pool.shutdown(timeout=0)
    return sorted(latencies)


def pool_runs(args: argparse.Namespace, model: LoadedModel, ffmpeg: str, scratch: Path) -> None:
    cores, threads = available_cores(), torch.get_num_threads()
    songs = [
        cut(ffmpeg, MUSIC[index % len(MUSIC)], 15.0 * index, args.song_seconds,
            scratch / f"song-{index}.flac")
        for index in range(args.songs)
    ]  # fmt: skip
    print(
        f"\n== the pool: {args.songs} songs of {args.song_seconds:.0f} s, "
        f"one every {args.stagger_seconds:.0f} s =="
    )
    plans = {
        "budget (cores - 1 ffmpeg slots)": CpuPlan.for_cores(cores, threads),
        "no budget (before)": CpuPlan(cores=10_000, model_threads=threads, audio_slots=10_000),
    }
    for run in range(args.repeat):
        for label, plan in plans.items():
            config = PoolConfig(
                ffmpeg=ffmpeg,
                tmp_root=scratch / "tmp",
                cache_dir=scratch / f"cache-{label[:6]}-{run}",
                batch_size=1,
                max_running_jobs=args.songs,
                max_jobs_per_user=args.songs,
                limits=LIMITS,
                warm_up=False,
                cpu=plan,
            )
            latencies = asyncio.run(through_pool(config, model, songs, args.stagger_seconds))
            torch.set_num_threads(threads)
            print(
                f"{label:34s} all done {latencies[-1]:6.1f} s; songs done at "
                + ", ".join(f"{seconds:.1f}" for seconds in latencies)
                + f" s (mean {statistics.mean(latencies):.1f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--song-seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--stagger-seconds", type=float, default=0.0, help="between submissions (0: together)"
    )
    parser.add_argument("--skip-contention", action="store_true")
    parser.add_argument("--skip-pool", action="store_true")
    args = parser.parse_args()
    tuned = keep_memory_mapped()  # as the CLI does, before any thread starts
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        model = random_htdemucs(scratch / "models", torch.device("cpu"), args.precision)
        print(
            f"cores {available_cores()}, torch threads {torch.get_num_threads()}, "
            f"forward pass in {model.precision}, malloc tuned {tuned}"
        )
        if not args.skip_contention:
            contention(model, ffmpeg, scratch)
        if not args.skip_pool:
            pool_runs(args, model, ffmpeg, scratch)


if __name__ == "__main__":
    main()
