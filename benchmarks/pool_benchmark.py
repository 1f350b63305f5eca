"""The worker pool versus ``apply_model`` one song after another; memory; responsiveness.

Uses a random model of the exact pretrained ``htdemucs`` architecture (weights do not
change cost), saved in a temporary --repo folder and loaded through ``load_model`` like
production. Inputs are cut from, or looped out of, the real music in ../shared/data.

1. Throughput: N songs submitted together to the pool (decode + separate + MP3 encode),
   for each batch size of the sweep, versus ``apply_model`` on the same decoded songs
   one after another in this process (the model step alone).
2. Memory: peak RSS of a fresh process separating a short and a long song through the
   pool, and their ratio: over the whole process (ru_maxrss) and over the separation
   alone (the high-water mark is reset after loading the model).
3. Responsiveness: the worst delay of a 10 ms ``asyncio.sleep`` during the pool runs.

    python benchmarks/pool_benchmark.py
    python benchmarks/pool_benchmark.py --device cuda --batch-sizes 1,4,8,16
    python benchmarks/pool_benchmark.py --skip-memory --songs 2 --song-seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demucs.apply import apply_model

from separation.audio.decode import AudioLimits
from separation.audio.ffmpeg import find_ffmpeg
from separation.jobs import SeparationRequest
from separation.model.allocator import keep_memory_mapped
from separation.model.loading import LoadedModel, load_model, resolve_device
from separation.model.precision import resolve_precision
from separation.model.random_models import (
    HTDEMUCS_KWARGS,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from separation.pipeline import PipelineConfig, decode_input
from separation.pool import PoolConfig, SeparationPool
from separation.workdir import job_directory

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MUSIC = [SHARED_DATA / "lets-go-fishin.ogg", SHARED_DATA / "vibe-ace.ogg"]
LIMITS = AudioLimits(max_duration_seconds=3600, max_input_bytes=2 * 1024**3)
MODEL_KINDS = ("htdemucs", "tiny")
"""``--model`` choices: the exact pretrained architecture (for figures), or a tiny model
of the same structure (for smoke tests: seconds, not minutes)."""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Restart the kernel's high-water mark (Linux >= 4.0), so a phase can be measured."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def phase_peak_rss_mib() -> float:
    """Peak RSS since :func:`reset_peak_rss` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def random_htdemucs(folder: Path, device: torch.device, precision: str = "fp32") -> LoadedModel:
    """A random model of the exact ``htdemucs`` architecture saved in a --repo ``folder``
    and loaded through ``load_model`` like production, its forward pass in ``precision``
    (a setting: ``auto`` resolves for ``device``)."""
    save_repo_model(folder, "htdemucs", [build_htdemucs(HTDEMUCS_KWARGS)])
    model = load_model("htdemucs", repo=folder, device=device)
    return dataclasses.replace(model, precision=resolve_precision(precision, device))


def random_model(kind: str, folder: Path) -> LoadedModel:
    """A random model of one of :data:`MODEL_KINDS` on the CPU, saved in ``folder`` and
    loaded like production: ``htdemucs`` in the CLI's precision, ``tiny`` in fp32."""
    if kind == "htdemucs":
        return random_htdemucs(folder, torch.device("cpu"), "auto")
    save_repo_model(folder, "tiny", [build_htdemucs(TINY_HTDEMUCS_KWARGS)])
    return load_model("tiny", repo=folder, device=torch.device("cpu"))


def cut(ffmpeg: str, source: Path, start: float, seconds: float, target: Path) -> Path:
    """``seconds`` of ``source`` from ``start``, looping the source if it is shorter."""
    subprocess.run(
        # Looping makes the muxer warn about timestamps at every seam; the audio is fine.
        [ffmpeg, "-hide_banner", "-loglevel", "fatal", "-stream_loop", "-1", "-ss", str(start),
         "-i", str(source), "-t", str(seconds), "-map", "0:a:0", "-c:a", "flac", "-y",
         str(target)],
        check=True,
    )  # fmt: skip
    return target


@contextmanager
def one_song_pool(
    seconds: float, model_kind: str = "htdemucs"
) -> Iterator[tuple[PoolConfig, LoadedModel, Path]]:
    """A pool config, a random model (:func:`random_model`: by default the pretrained
    htdemucs architecture in the CLI's precision) and ``seconds`` of the first song, in a
    temporary folder, with memory tuned as the CLI does: what the controls, formats and
    video benchmarks start from."""
    tuned = keep_memory_mapped()  # as the CLI does, before any thread starts
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        model = random_model(model_kind, scratch / "models")
        song = cut(ffmpeg, MUSIC[0], 0.0, seconds, scratch / "song.flac")
        print(
            f"{seconds:.0f} s of {MUSIC[0].name}, random {model_kind} architecture, forward pass "
            f"in {model.precision}, torch threads {torch.get_num_threads()}, "
            f"malloc tuned {tuned}"
        )
        yield (
            PoolConfig(
                ffmpeg=ffmpeg, tmp_root=scratch / "tmp", cache_dir=scratch / "cache", limits=LIMITS
            ),
            model,
            song,
        )


def pool_config(scratch: Path, ffmpeg: str, device: torch.device, batch_size: int) -> PoolConfig:
    return PoolConfig(
        ffmpeg=ffmpeg,
        tmp_root=scratch / "tmp",
        cache_dir=scratch / f"cache-{time.monotonic_ns()}",  # never a cache hit
        devices=(device,),
        batch_size=batch_size,
        max_running_jobs=8,
        max_jobs_per_user=8,
        limits=LIMITS,
        warm_up=False,
    )


async def run_pool(
    config: PoolConfig, model: LoadedModel, songs: list[Path]
) -> tuple[float, float]:
    """Wall seconds for all ``songs`` submitted together, and the worst loop delay."""
    wall, delays = await run_pool_with_delays(config, model, songs)
    return wall, max(delays, default=0.0)


async def run_pool_with_delays(
    config: PoolConfig, model: LoadedModel, songs: list[Path]
) -> tuple[float, list[float]]:
    """Wall seconds for all ``songs`` submitted together, and how late each 10 ms
    ``asyncio.sleep`` of the event loop woke up meanwhile (a chat handler's wait)."""
    pool = SeparationPool(config, lambda device: model)
    await pool.start()
    delays: list[float] = []
    started = time.perf_counter()
    handles = [
        await pool.submit(SeparationRequest(user_ref=f"user-{index}", input_path=song))
        for index, song in enumerate(songs)
    ]
    while not all(handle.done for handle in handles):
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        delays.append(max(0.0, time.perf_counter() - before - 0.01))
    for handle in handles:
        await handle.result()
    wall = time.perf_counter() - started
    await pool.shutdown(timeout=0)
    return wall, delays


def apply_model_one_by_one(
    model: LoadedModel, songs: list[Path], scratch: Path, ffmpeg: str
) -> float:
    """Wall seconds of ``apply_model`` on each decoded, normalised song in turn."""
    config = PipelineConfig(ffmpeg=ffmpeg, tmp_root=scratch / "tmp", limits=LIMITS)
    total = 0.0
    for song in songs:
        with job_directory(scratch / "tmp") as workdir:
            audio = decode_input(song, workdir, config=config, sample_rate=model.samplerate)
            wav = torch.from_numpy(audio.read_all())
            mix = ((wav - audio.mean) / (audio.std + 1e-8))[None]
            started = time.perf_counter()
            apply_model(model.sub_models[0], mix, shifts=0, device=model.device)
            total += time.perf_counter() - started
    return total


def throughput(args: argparse.Namespace, repo: Path, scratch: Path, ffmpeg: str) -> None:
    device = resolve_device(args.device)
    model = load_model("htdemucs", repo=repo, device=device)
    songs = [
        cut(ffmpeg, MUSIC[index % len(MUSIC)], 20.0 * index, args.song_seconds,
            scratch / f"song-{index}.flac")
        for index in range(args.songs)
    ]  # fmt: skip
    print(f"\n== throughput: {args.songs} songs of {args.song_seconds:.0f} s on {device} ==")
    baseline = apply_model_one_by_one(model, songs, scratch, ffmpeg)
    print(f"apply_model, one song after another (model only): {baseline:7.1f} s")
    results = []
    for batch_size in args.batch_sizes:
        config = pool_config(scratch, ffmpeg, device, batch_size)
        wall, worst = asyncio.run(run_pool(config, model, songs))
        results.append((batch_size, wall, worst))
        print(
            f"pool, batch size {batch_size:2d} (decode+separate+mp3):    {wall:7.1f} s  "
            f"ratio {wall / baseline:.3f}  worst loop delay {worst * 1000:.0f} ms"
        )
    best = min(results, key=lambda item: item[1])
    print(f"best batch size here: {best[0]} (ratio {best[1] / baseline:.3f}, target <= 1.0)")
    print(f"worst event-loop delay over all runs: {max(r[2] for r in results) * 1000:.0f} ms")


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: one song through the pool; prints peak RSS as JSON."""
    device = resolve_device(args.device)
    model = load_model("htdemucs", repo=args.repo, device=device)
    loading = peak_rss_mib()
    reset = reset_peak_rss()
    scratch = Path(args.child_scratch)
    config = pool_config(scratch, find_ffmpeg(), device, args.memory_batch_size)
    wall, _ = asyncio.run(run_pool(config, model, [Path(args.child_input)]))
    figures = {
        "peak_rss_mib": peak_rss_mib(),
        "loading_peak_mib": loading,
        "separation_peak_mib": phase_peak_rss_mib() if reset else float("nan"),
        "wall": wall,
    }
    print(json.dumps(figures))


def memory(args: argparse.Namespace, repo: Path, scratch: Path, ffmpeg: str) -> None:
    print(f"\n== memory: peak RSS of a fresh process, batch size {args.memory_batch_size} ==")
    figures = {}
    for seconds in (args.short_seconds, args.long_seconds):
        song = cut(ffmpeg, MUSIC[0], 0.0, seconds, scratch / f"memory-{seconds:.0f}.flac")
        command = [
            sys.executable, __file__, "--child-input", str(song), "--child-scratch",
            str(scratch), "--repo", str(repo), "--device", args.device,
            "--memory-batch-size", str(args.memory_batch_size),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        figures[seconds] = json.loads(output.strip().splitlines()[-1])
        result = figures[seconds]
        print(
            f"{seconds / 60:5.1f} min song: peak RSS (ru_maxrss) {result['peak_rss_mib']:6.0f} MiB"
            f"; while loading the model {result['loading_peak_mib']:6.0f} MiB"
            f"; while separating {result['separation_peak_mib']:6.0f} MiB"
            f"; wall {result['wall']:.0f} s"
        )
    long, short = figures[args.long_seconds], figures[args.short_seconds]
    for label, key in (("whole process", "peak_rss_mib"), ("separation", "separation_peak_mib")):
        print(f"ratio long / short, {label}: {long[key] / short[key]:.3f}  (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--songs", type=int, default=4)
    parser.add_argument("--song-seconds", type=float, default=30.0)
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(item) for item in text.split(",")],
        default=[1, 2, 4],
        help="comma-separated sweep, e.g. 1,2,4,8",
    )
    parser.add_argument("--short-seconds", type=float, default=120.0)
    parser.add_argument("--long-seconds", type=float, default=720.0)
    parser.add_argument("--memory-batch-size", type=int, default=1)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    # Internal: the fresh process of the memory measurement.
    parser.add_argument("--child-input", help=argparse.SUPPRESS)
    parser.add_argument("--child-scratch", help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_input:
        memory_child(args)
        return

    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        network = build_htdemucs(HTDEMUCS_KWARGS)
        parameters = sum(p.numel() for p in network.parameters())
        save_repo_model(scratch / "models", "htdemucs", [network])
        del network
        print(
            f"model: random htdemucs architecture, {parameters / 1e6:.2f} M parameters; "
            f"torch threads {torch.get_num_threads()}"
        )
        # Memory first: a child inherits the parent's RSS high-water mark at fork time.
        if not args.skip_memory:
            memory(args, scratch / "models", scratch, ffmpeg)
        if not args.skip_throughput:
            throughput(args, scratch / "models", scratch, ffmpeg)


if __name__ == "__main__":
    main()
