"""The GPU check: fidelity and speed of the separation on one GPU, in one table.

Written for a person who has one GPU machine for ten minutes and cannot edit anything
there: run ``bash benchmarks/gpu_check.sh`` (it installs what is missing besides torch
from a local wheel folder, then runs this). It finishes in under six minutes on an
H100/H200-class GPU and prints one table with:

* fidelity of our engine at fp32, bf16 and fp16 against ``demucs.apply.apply_model`` on
  the same device (fp32: max abs difference < 1e-4; bf16/fp16: every stem at most
  -40 dB, the gate of ``separation.model.fidelity``); the exit status is 1 if one fails;
* seconds for one 4-minute song end to end (decode, separate, encode two MP3s) at each
  precision, after a warm-up pass so that CUDA's start-up is not counted;
* throughput with 1, 4 and 16 songs submitted together to the worker pool at batch sizes
  1, 4, 8 and 16, with the peak GPU memory of each; a configuration whose estimated
  time (from what was measured before it) would pass ``--budget-seconds`` is skipped
  with a note, so the table always comes;
* the CPU-side work per segment (building the input, overlap-adding the output) against
  the forward pass per segment: on CUDA a worker overlap-adds one batch on a second
  thread while the next runs (``separation.model.workers``), so a ratio near or above 1 means
  the CPU, not the GPU, limits the speed;
* the forward pass time per segment at each batch size and the batch size
  ``separation.model.batch_sweep`` recommends for ``pool.batch_size``.

The model is a random one of the exact ``htdemucs`` architecture (weights do not
change cost, and none need downloading), saved in a temporary --repo folder and loaded
through ``load_model`` like production. The song is ../shared/data/lets-go-fishin.ogg
looped to length when the checkout has it, else a synthesised one (tones, noise and a
sung-like sine melody). The pool runs at the precision ``auto`` picks (bf16 where the
device computes it natively).

``--quick`` (the CPU smoke test in the suite, under a minute on two cores) shrinks
everything: a tiny model of the same structure, an 8 s song, 4 s songs in a throughput
matrix of 1 and 4 songs at batch sizes 1 and 4, and a sweep of batch sizes 1 and 2.

    bash benchmarks/gpu_check.sh                       # on the GPU machine
    python benchmarks/gpu_check.py --device cuda:1 --song-seconds 120
    python benchmarks/gpu_check.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demucs.apply import apply_model
from pool_benchmark import LIMITS, MUSIC, cut, pool_config, run_pool

from separation.audio.decode import DecodedAudio
from separation.audio.ffmpeg import find_ffmpeg
from separation.cache.results import file_sha256
from separation.errors import DeviceError
from separation.model.allocator import keep_memory_mapped
from separation.model.batch_sweep import recommend_batch_size, sweep_batch_sizes, synchronize
from separation.model.engine import SeparationJob, SeparationOptions, run_batch, run_job
from separation.model.fidelity import FIDELITY_GATE_DB, relative_error_db
from separation.model.loading import LoadedModel, describe_device, load_model, resolve_device
from separation.model.precision import Precision, forward_precision, native_bf16, resolve_precision
from separation.model.random_models import (
    HTDEMUCS_KWARGS,
    TINY_HTDEMUCS_KWARGS,
    build_htdemucs,
    save_repo_model,
)
from separation.pipeline import PipelineConfig, Song, decode_input, separate_file
from separation.workdir import job_directory

FP32_MAX_ABS = 1e-4
"""fp32 must equal ``apply_model`` to this (tests/separation/test_engine.py's tolerance)."""
LOOPED_SONG = MUSIC[0]  # lets-go-fishin.ogg, 2:13 with vocals
ESTIMATE_MARGIN = 1.25
"""Throughput estimates are multiplied by this: a skipped row costs less than a late end."""
ESTIMATE_OVERHEAD_SECONDS = 2.0
"""Per throughput configuration: pool start and stop, hashing, the first batch's shapes."""
EXIT_FIDELITY_FAILED = 1
EXIT_CANNOT_RUN = 2

Row = tuple[str, str, str]
"""figure, value, note."""


class GpuCheckError(RuntimeError):
    """The check could not set itself up (its test inputs are unusable)."""


@dataclass(frozen=True)
class Plan:
    """What to measure; ``--quick`` shrinks it."""

    tiny: bool
    song_seconds: float
    throughput_seconds: float
    song_counts: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    sweep_sizes: tuple[int, ...]
    sweep_repeats: int
    budget_seconds: float


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            tiny=True,
            song_seconds=args.song_seconds or 8.0,
            throughput_seconds=args.throughput_seconds or 4.0,
            song_counts=(1, 4),
            batch_sizes=(1, 4),
            sweep_sizes=(1, 2),
            sweep_repeats=1,
            budget_seconds=args.budget_seconds,
        )
    return Plan(
        tiny=False,
        song_seconds=args.song_seconds or 240.0,
        throughput_seconds=args.throughput_seconds or 30.0,
        song_counts=(1, 4, 16),
        batch_sizes=(1, 4, 8, 16),
        sweep_sizes=(1, 2, 4, 8, 16),
        sweep_repeats=2,
        budget_seconds=args.budget_seconds,
    )


class Clock:
    """Seconds since the check started, and progress lines while it runs."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.elapsed:6.1f} s] {text}", flush=True)


class GpuMemory:
    """Peak GPU memory of one step, and over the whole check (None on CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.overall = 0

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int | None:
        """Since the last :meth:`reset`."""
        if self.device.type != "cuda":
            return None
        peak = int(torch.cuda.max_memory_allocated(self.device))
        self.overall = max(self.overall, peak)
        return peak

    def overall_peak(self) -> int | None:
        """Over every step measured."""
        return None if self.peak() is None else self.overall


def gib(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 2**30:.2f} GiB"


# -- inputs ----------------------------------------------------------------------------
def build_model(folder: Path, device: torch.device, *, tiny: bool) -> tuple[LoadedModel, int]:
    """A random ``htdemucs`` (or tiny) model, saved and loaded like production's."""
    network = build_htdemucs(TINY_HTDEMUCS_KWARGS if tiny else HTDEMUCS_KWARGS)
    parameters = sum(parameter.numel() for parameter in network.parameters())
    save_repo_model(folder, "htdemucs", [network])
    del network
    return load_model("htdemucs", repo=folder, device=device), parameters


def synthesised_song(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A stereo ``(frames, 2)`` float32 song: a bass line and a chord (panned), noise
    hits on the beat, and a "vocal" sine melody with vibrato in the middle."""
    rng = np.random.default_rng(seed)
    time_axis = np.arange(int(seconds * sample_rate)) / sample_rate
    beat = 0.5  # seconds, 120 bpm
    step = (time_axis // beat).astype(np.int64)
    bass = 0.25 * np.sin(2 * np.pi * np.array([55.0, 55.0, 73.4, 82.4])[step // 4 % 4] * time_axis)
    chord = sum(0.08 * np.sin(2 * np.pi * f * time_axis) for f in (220.0, 277.2, 329.6))
    decay = np.exp(-(time_axis % beat) * 30)
    drums = 0.3 * decay * rng.standard_normal(time_axis.size)
    notes = 440.0 * 2 ** (rng.integers(-5, 8, size=int(seconds / beat) + 1) / 12)
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * time_axis)
    vocal = 0.2 * np.sin(2 * np.pi * notes[step] * vibrato * time_axis)
    left = bass + 0.7 * chord + drums + vocal
    right = bass + 0.3 * chord + drums + vocal
    song = np.stack([left, right], axis=1)
    return (0.8 * song / np.abs(song).max()).astype(np.float32)  # no clipping in the MP3


def make_song(ffmpeg: str, seconds: float, target: Path, sample_rate: int) -> str:
    """Write a ``seconds`` long MP3 at ``target``; returns where its music came from."""
    mp3 = ["-ac", "2", "-ar", str(sample_rate), "-c:a", "libmp3lame", "-b:a", "192k"]
    if LOOPED_SONG.is_file():
        subprocess.run(
            # Looping makes the muxer warn about timestamps at every seam; the audio is fine.
            [ffmpeg, "-hide_banner", "-loglevel", "fatal", "-stream_loop", "-1",
             "-i", str(LOOPED_SONG), "-t", str(seconds), "-map", "0:a:0", *mp3,
             "-y", str(target)],
            check=True,
        )  # fmt: skip
        return f"{LOOPED_SONG.name} looped"
    samples = synthesised_song(seconds, sample_rate)
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", str(sample_rate),
         "-ac", "2", "-i", "pipe:0", *mp3, "-y", str(target)],
        input=samples.tobytes(),
        check=True,
    )  # fmt: skip
    return "synthesised (../shared/data not found)"


def distinct_copies(
    ffmpeg: str, song: Path, song_seconds: float, count: int, seconds: float, folder: Path
) -> list[Path]:
    """``count`` excerpts of ``song`` from different offsets: different bytes, so neither
    the result cache nor the single-flight join (both keyed by the input's SHA-256)
    runs one song for another."""
    folder.mkdir()
    span = max(0.0, song_seconds - seconds)
    starts = [span * index / max(count, 1) for index in range(count)]
    with ThreadPoolExecutor() as threads:
        copies = list(
            threads.map(
                lambda item: cut(ffmpeg, song, item[1], seconds, folder / f"copy-{item[0]}.flac"),
                enumerate(starts),
            )
        )
    if len({file_sha256(path) for path in copies}) != len(copies):
        raise GpuCheckError("the throughput songs are not all different")
    return copies


# -- measurements ----------------------------------------------------------------------
@dataclass
class Fidelity:
    precision: Precision
    batch_size: int
    stem_db: dict[str, float]
    max_abs: float
    passed: bool | None
    """None: not run here (the note says why)."""
    note: str = ""


def fast_precisions(device: torch.device) -> dict[Precision, str | None]:
    """bf16/fp16 to check, with the reason one is skipped (None: run it)."""
    if device.type == "cuda":
        return {"bf16": None if native_bf16(device) else "bf16 not supported by this GPU",
                "fp16": None}  # fmt: skip
    return {"bf16": None, "fp16": None}  # CPU autocast computes both, natively or not


def check_fidelity(
    model: LoadedModel, audio: DecodedAudio, workdir: Path, batch_size: int, clock: Clock
) -> list[Fidelity]:
    """Our engine at each precision against ``apply_model`` at fp32, in the normalised
    domain both compute in (as tests/separation/test_engine.py compares them)."""
    # Normalised as SeparationJob does it (float32 mean and std + 1e-8).
    mean, std = np.float32(audio.mean), np.float32(audio.std + 1e-8)
    mix = ((torch.from_numpy(audio.read_all()) - mean) / std)[None]
    clock.say("fidelity: apply_model reference (fp32)")
    with torch.inference_mode():
        reference_tensor = apply_model(
            model.sub_models[0], mix, shifts=0, split=True, overlap=0.25, device=model.device
        )
    reference = reference_tensor[0].cpu().numpy()
    del mix, reference_tensor
    results = []
    checks: dict[Precision, str | None] = {"fp32": None, **fast_precisions(model.device)}
    for precision, skipped in checks.items():
        # fp32 one segment per pass, as apply_model runs: equal up to rounding order.
        batch = 1 if precision == "fp32" else batch_size
        if skipped is not None:
            results.append(Fidelity(precision, batch, {}, float("nan"), None, skipped))
            continue
        clock.say(f"fidelity: our engine at {precision}, batch {batch}")
        folder = workdir / f"fidelity-{precision}"
        folder.mkdir()
        job = SeparationJob(
            dataclasses.replace(model, precision=precision),
            audio,
            folder,
            SeparationOptions(shifts=0, overlap=0.25),
            rng=random.Random(7),
        )
        try:
            ours = run_job(job, batch_size=batch).read(0, audio.frames, normalised=True)
        except RuntimeError as error:
            job.discard()
            if model.device.type == "cpu":  # a CPU build without that autocast kernel
                results.append(
                    Fidelity(precision, batch, {}, float("nan"), None, f"skipped: {error}")
                )
                continue
            results.append(Fidelity(precision, batch, {}, float("nan"), False, f"error: {error}"))
            continue
        job.discard()
        stem_db = {
            source: relative_error_db(ours[index], reference[index])
            for index, source in enumerate(model.sources)
        }
        max_abs = float(np.max(np.abs(ours - reference)))
        if precision == "fp32":
            passed = max_abs < FP32_MAX_ABS
        else:
            passed = all(value <= FIDELITY_GATE_DB for value in stem_db.values())
        results.append(Fidelity(precision, batch, stem_db, max_abs, passed))
    return results


def warm_up(model: LoadedModel, batch_size: int) -> None:
    """One forward pass at this precision and batch size (kernels picked, memory held)."""
    length = int(model.segments[0] * model.samplerate)
    inputs = torch.zeros(batch_size, model.audio_channels, length, device=model.device)
    with torch.inference_mode(), forward_precision(model.precision, model.device):
        model.sub_models[0](inputs)
    synchronize(model.device)


def end_to_end(
    model: LoadedModel,
    song: Path,
    folder: Path,
    config: PipelineConfig,
    batch_size: int,
    memory: GpuMemory,
) -> tuple[float, int | None]:
    """Wall seconds and peak GPU memory of one song from file to two MP3s."""
    warm_up(model, batch_size)
    folder.mkdir()
    memory.reset()
    started = time.perf_counter()
    result = asyncio.run(
        separate_file(Song(song), folder, model=model, config=config, batch_size=batch_size)
    )
    wall = time.perf_counter() - started
    if len(result.outputs) != 2 or not all(path.is_file() for path in result.outputs.values()):
        raise GpuCheckError(f"end to end did not write two files: {result.outputs}")
    shutil.rmtree(folder)
    return wall, memory.peak()


def cpu_side_per_segment(
    model: LoadedModel, audio: DecodedAudio, workdir: Path, batch_size: int
) -> tuple[float, float]:
    """Mean seconds of ``build_input`` and of ``complete`` per segment, over one song run
    the way a worker runs it (input built, forward pass, overlap-add, in turn)."""
    folder = workdir / "cpu-side"
    folder.mkdir()
    job = SeparationJob(model, audio, folder, SeparationOptions())
    building: list[float] = []
    completing: list[float] = []
    while job.has_pending:
        segments = job.take_segments(batch_size)
        for segment in segments:
            started = time.perf_counter()
            segment.build_input()
            building.append(time.perf_counter() - started)
        for segment, output in zip(segments, run_batch(model, segments), strict=True):
            started = time.perf_counter()
            job.complete(segment, output)
            completing.append(time.perf_counter() - started)
    job.discard()
    return float(np.mean(building)), float(np.mean(completing))


@dataclass
class Throughput:
    songs: int
    batch_size: int
    wall: float | None
    """None: skipped (``note`` says why)."""
    peak_memory: int | None = None
    note: str = ""


class ThroughputEstimator:
    """Seconds a throughput configuration will take, from what was measured before it.

    A batch size already measured (with fewer songs, which is slower per song: less
    decoding and encoding overlaps the model) gives its seconds per audio second. An
    unmeasured one starts from the single song end to end at the recommended size and
    adds the difference in forward-pass time per segment the sweep measured.
    """

    def __init__(
        self,
        end_to_end_per_audio_second: float,
        sweep: dict[int, float | None],
        recommended: int,
        segments_per_audio_second: float,
    ) -> None:
        self._base = end_to_end_per_audio_second
        self._sweep = sweep
        self._recommended = recommended
        self._segments_per_audio_second = segments_per_audio_second
        self._measured: dict[int, float] = {}

    def record(self, batch_size: int, audio_seconds: float, wall: float) -> None:
        self._measured[batch_size] = wall / audio_seconds

    def _per_audio_second(self, batch_size: int) -> float:
        if batch_size in self._measured:
            return self._measured[batch_size]
        this, best = self._sweep.get(batch_size), self._sweep.get(self._recommended)
        if this is not None and best is not None:
            return self._base + self._segments_per_audio_second * max(0.0, this - best)
        return max([self._base, *self._measured.values()])

    def seconds(self, songs: int, batch_size: int, song_seconds: float) -> float:
        rate = self._per_audio_second(batch_size)
        return songs * song_seconds * rate * ESTIMATE_MARGIN + ESTIMATE_OVERHEAD_SECONDS


def throughput_matrix(
    model: LoadedModel,
    copies: Sequence[Path],
    plan: Plan,
    scratch: Path,
    ffmpeg: str,
    estimator: ThroughputEstimator,
    memory: GpuMemory,
    clock: Clock,
) -> list[Throughput]:
    """Each (songs, batch size) through a fresh pool, fewest songs first, within budget."""
    results = []
    for songs in plan.song_counts:
        for batch_size in plan.batch_sizes:
            estimate = estimator.seconds(songs, batch_size, plan.throughput_seconds)
            if clock.elapsed + estimate > plan.budget_seconds:
                note = (
                    f"skipped: estimated {estimate:.0f} s would end past the "
                    f"{plan.budget_seconds:.0f} s budget (at {clock.elapsed:.0f} s now)"
                )
                clock.say(f"throughput {songs} song(s), batch {batch_size}: {note}")
                results.append(Throughput(songs, batch_size, None, note=note))
                continue
            clock.say(f"throughput: {songs} song(s) together, batch {batch_size}")
            config = dataclasses.replace(
                pool_config(scratch, ffmpeg, model.device, batch_size),
                max_running_jobs=max(songs, batch_size),
                max_jobs_per_user=songs,
            )
            memory.reset()
            wall, _ = asyncio.run(run_pool(config, model, list(copies[:songs])))
            estimator.record(batch_size, songs * plan.throughput_seconds, wall)
            results.append(Throughput(songs, batch_size, wall, memory.peak()))
    return results


# -- the table -------------------------------------------------------------------------
def format_table(rows: Sequence[Row]) -> str:
    header: Row = ("figure", "value", "note")
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(2)]
    lines = []
    for row in (header, ("-" * widths[0], "-" * widths[1], "-" * 4), *rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}".rstrip())
    return "\n".join(lines)


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "not run"}[passed]


def fidelity_rows(results: Sequence[Fidelity]) -> list[Row]:
    rows = []
    for item in results:
        label = f"fidelity {item.precision} vs apply_model, worst stem (dB)"
        if not item.stem_db:
            rows.append((label, "-", f"{verdict(item.passed)}: {item.note}"))
            continue
        per_stem = ", ".join(f"{source} {value:.1f}" for source, value in item.stem_db.items())
        gate = (
            f"max abs diff {item.max_abs:.1e} (gate < {FP32_MAX_ABS:.0e})"
            if item.precision == "fp32"
            else f"gate <= {FIDELITY_GATE_DB:.0f} dB per stem"
        )
        worst = max(item.stem_db.values())
        rows.append(
            (
                label,
                f"{worst:.1f}",
                f"{verdict(item.passed)}: {gate}; {per_stem}; batch {item.batch_size}",
            )
        )
    return rows


# -- main ------------------------------------------------------------------------------
def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny model, 8 s song, 1/4 songs x batch 1/4 (the CPU smoke test)",
    )
    parser.add_argument(
        "--song-seconds",
        type=float,
        default=None,
        help="length of the song for fidelity and end to end (default 240; --quick: 8)",
    )
    parser.add_argument(
        "--throughput-seconds",
        type=float,
        default=None,
        help="length of each song in the throughput matrix (default 30; --quick: 4)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=330.0,
        help="skip throughput configurations that would end later than this (default 330)",
    )
    return parser.parse_args(argv)


def header_rows(device: torch.device, model: LoadedModel, parameters: int, plan: Plan) -> list[Row]:
    cuda = torch.version.cuda or "none"
    rows: list[Row] = [
        ("device", str(device), describe_device(device)),
        ("torch", torch.__version__, f"Python {sys.version.split()[0]}"),
        ("CUDA", cuda, "the version torch was built with"),
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rows.append(("GPU memory", gib(props.total_memory), props.name))
        rows.append(
            (
                "TF32 (cuDNN convolutions / matmul)",
                f"{torch.backends.cudnn.allow_tf32} / {torch.backends.cuda.matmul.allow_tf32}",
                "torch's defaults; our fp32 and apply_model use the same",
            )
        )
    kind = "tiny HTDemucs (--quick)" if plan.tiny else "exact htdemucs architecture"
    rows.append(
        ("model", f"{parameters / 1e6:.2f} M params", f"{kind}, random weights, {model.sources}")
    )
    return rows


@dataclass
class Measurements:
    """Everything the table shows besides the machine."""

    precision: Precision
    """The pool's (``auto``): the sweep, CPU side and throughput matrix run at it."""
    sweep: dict[int, float | None]
    sweep_peak_memory: int | None
    recommended: int
    fidelity: list[Fidelity]
    building: float
    completing: float
    end_to_end: dict[Precision, tuple[float, int | None]]
    matrix: list[Throughput]


def measure(
    model: LoadedModel, plan: Plan, scratch: Path, song: Path, ffmpeg: str, clock: Clock
) -> tuple[Measurements, GpuMemory]:
    memory = GpuMemory(model.device)
    precision = resolve_precision("auto", model.device)
    fast_model = dataclasses.replace(model, precision=precision)
    config = PipelineConfig(ffmpeg=ffmpeg, tmp_root=scratch / "tmp", limits=LIMITS)

    clock.say(f"sweep of batch sizes {plan.sweep_sizes} at {precision}")
    memory.reset()
    sweep = sweep_batch_sizes(fast_model, plan.sweep_sizes, repeats=plan.sweep_repeats)
    sweep_peak_memory = memory.peak()
    recommended = recommend_batch_size(sweep)

    with job_directory(scratch / "tmp") as workdir:
        audio = decode_input(song, workdir, config=config, sample_rate=model.samplerate)
        fidelity = check_fidelity(model, audio, workdir, recommended, clock)
        clock.say(f"CPU side per segment at {precision}, batch {recommended}")
        building, completing = cpu_side_per_segment(fast_model, audio, workdir, recommended)

    end_to_end_runs: dict[Precision, tuple[float, int | None]] = {}
    for item in fidelity:
        if item.stem_db:  # it ran (not skipped, no error)
            clock.say(f"end to end at {item.precision}, batch {recommended}")
            end_to_end_runs[item.precision] = end_to_end(
                dataclasses.replace(model, precision=item.precision),
                song,
                scratch / f"e2e-{item.precision}",
                config,
                recommended,
                memory,
            )

    clock.say(f"{max(plan.song_counts)} distinct songs for the throughput matrix")
    copies = distinct_copies(
        ffmpeg,
        song,
        plan.song_seconds,
        max(plan.song_counts),
        plan.throughput_seconds,
        scratch / "copies",
    )
    base_wall, _ = end_to_end_runs.get(precision, end_to_end_runs["fp32"])
    stride_seconds = float(model.segments[0]) * (1 - SeparationOptions().overlap)
    estimator = ThroughputEstimator(
        base_wall / plan.song_seconds, sweep, recommended, 1 / stride_seconds
    )
    matrix = throughput_matrix(fast_model, copies, plan, scratch, ffmpeg, estimator, memory, clock)
    return (
        Measurements(
            precision,
            sweep,
            sweep_peak_memory,
            recommended,
            fidelity,
            building,
            completing,
            end_to_end_runs,
            matrix,
        ),
        memory,
    )


def result_rows(results: Measurements, plan: Plan) -> list[Row]:
    rows = fidelity_rows(results.fidelity)
    batch = results.recommended
    for precision, (wall, peak) in results.end_to_end.items():
        rows.append(
            (
                f"end to end, {plan.song_seconds:.0f} s song, {precision} (s)",
                f"{wall:.2f}",
                f"decode + separate + 2 MP3s, after a warm-up pass; real-time factor "
                f"{wall / plan.song_seconds:.3f}; batch {batch}; peak GPU {gib(peak)}",
            )
        )
    for item in results.matrix:
        songs = f"{item.songs} song" + ("s" if item.songs > 1 else "")
        label = f"throughput, {songs} x {plan.throughput_seconds:.0f} s, batch {item.batch_size}"
        if item.wall is None:
            rows.append((label, "skipped", item.note))
            continue
        audio_per_second = item.songs * plan.throughput_seconds / item.wall
        rows.append(
            (
                f"{label} (songs/s)",
                f"{item.songs / item.wall:.3f}",
                f"{audio_per_second:.1f} s of audio per s; wall {item.wall:.1f} s; "
                f"peak GPU {gib(item.peak_memory)}; {results.precision}",
            )
        )
    for size, seconds in results.sweep.items():
        rows.append(
            (
                f"forward pass, batch {size} (ms per segment)",
                "OOM" if seconds is None else f"{seconds * 1000:.1f}",
                results.precision,
            )
        )
    forward = results.sweep[batch] or float("nan")
    cpu_side = results.building + results.completing
    rows += [
        ("peak GPU memory of the sweep", gib(results.sweep_peak_memory), "largest batch tried"),
        (
            "CPU side per segment: build_input (ms)",
            f"{results.building * 1000:.2f}",
            "read and normalise the segment's window",
        ),
        (
            "CPU side per segment: complete (ms)",
            f"{results.completing * 1000:.2f}",
            "overlap-add into the on-disk accumulator",
        ),
        (
            "CPU side / forward pass per segment",
            f"{cpu_side / forward:.2f}",
            f"batch {batch}; overlapped on CUDA: near 1 or above, the CPU sets the pace",
        ),
        (
            "recommended batch size",
            str(batch),
            f"smallest within 5 % of the fastest per segment at {results.precision} "
            "(pool.batch_size)",
        ),
    ]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    keep_memory_mapped()  # as the command line does, before any thread starts
    plan = plan_from(args)
    clock = Clock()
    try:
        device = resolve_device(args.device)
    except DeviceError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        scratch = Path(folder)
        clock.say(f"building the model on {describe_device(device)}")
        model, parameters = build_model(scratch / "models", device, tiny=plan.tiny)
        song = scratch / "song.mp3"
        source = make_song(ffmpeg, plan.song_seconds, song, model.samplerate)
        results, memory = measure(model, plan, scratch, song, ffmpeg, clock)

    rows = header_rows(device, model, parameters, plan)
    rows.append(("song", f"{plan.song_seconds:.0f} s", source))
    rows += result_rows(results, plan)
    rows.append(
        ("peak GPU memory, whole check", gib(memory.overall_peak()), "max_memory_allocated")
    )
    rows.append(
        ("wall time of this check (s)", f"{clock.elapsed:.0f}", f"budget {plan.budget_seconds:.0f}")
    )
    print()
    print(format_table(rows), flush=True)
    failed = [item.precision for item in results.fidelity if item.passed is False]
    if failed:
        print(f"\nfidelity gate FAILED for {', '.join(failed)}", file=sys.stderr)
        return EXIT_FIDELITY_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
