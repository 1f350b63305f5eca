"""One song through the pipeline: speed per precision, fidelity, and where the time goes.

Builds a random model with the exact pretrained ``htdemucs`` architecture (weights do
not change cost), saves it in a temporary --repo folder and loads it through
``separation.model.loading.load_model`` like production. Then, in one process:

1. speed: ``demucs.apply.apply_model`` on the already decoded, normalised audio (the
   reference) and our pipeline from the input file to two encoded MP3s, at fp32 and at
   each other precision asked for (default: ``auto``);
2. ``--fidelity``: on every song in ../shared/data, each stem of the fast precision
   against the fp32 stems of the same model (relative error energy; gate -40 dB);
3. ``--profile``: the default precision's run cut into stages (decode, input windows,
   forward passes, overlap-add, peak scan, encoding), in seconds and percent.

    python benchmarks/separation_benchmark.py ../shared/data/demucs-test-clip.mp3
    python benchmarks/separation_benchmark.py ../shared/data/lets-go-fishin.ogg --fidelity --profile
    python benchmarks/separation_benchmark.py song.mp3 --device cuda --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demucs.apply import apply_model

from separation.audio.decode import AudioLimits
from separation.audio.encode import EncodingSpec, Tags
from separation.audio.ffmpeg import find_ffmpeg
from separation.model.allocator import keep_memory_mapped
from separation.model.engine import SeparationJob, run_batch
from separation.model.fidelity import FIDELITY_GATE_DB, relative_error_db
from separation.model.loading import LoadedModel, load_model, resolve_device
from separation.model.precision import resolve_precision
from separation.model.random_models import HTDEMUCS_KWARGS, build_htdemucs, save_repo_model
from separation.pipeline import PipelineConfig, Song, decode_input, separate_file
from separation.rendering.render import clip_gain, output_names, render_outputs
from separation.workdir import job_directory

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def with_precision(model: LoadedModel, setting: str) -> LoadedModel:
    return dataclasses.replace(model, precision=resolve_precision(setting, model.device))


def speed(args: argparse.Namespace, model: LoadedModel, config: PipelineConfig, scratch: Path):
    """Seconds of apply_model and of the whole pipeline per precision; prints them."""
    with job_directory(config.tmp_root) as workdir:
        audio = decode_input(args.input, workdir, config=config, sample_rate=model.samplerate)
        wav = torch.from_numpy(audio.read_all())
        mix = ((wav - audio.mean) / (audio.std + 1e-8))[None]
        reference_times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            apply_model(model.sub_models[0], mix, shifts=0, device=model.device)
            reference_times.append(time.perf_counter() - started)
        seconds = audio.duration_seconds
        del wav, mix
    reference = min(reference_times)
    print(f"audio seconds:                              {seconds:8.2f}")
    print(f"apply_model on decoded audio, fp32 (s):     {reference:8.2f}")
    for setting in ["fp32", *args.precisions]:
        precise = with_precision(model, setting)
        times = []
        for run in range(args.repeat):
            out = scratch / f"out-{setting}-{run}"
            out.mkdir()
            started = time.perf_counter()
            asyncio.run(
                separate_file(
                    Song(args.input), out, model=precise, config=config, batch_size=args.batch_size
                )
            )
            times.append(time.perf_counter() - started)
        ours = min(times)
        print(
            f"pipeline decode+separate+2 MP3, {setting:>4} ({precise.precision}): {ours:8.2f} s"
            f"  / apply_model {ours / reference:.3f}  real-time factor {ours / seconds:.3f}"
        )


def stems_of(model: LoadedModel, path: Path, config: PipelineConfig, folder: Path) -> np.ndarray:
    audio = decode_input(path, folder, config=config, sample_rate=model.samplerate)
    job = SeparationJob(model, audio, folder, config.options, rng=random.Random(0))
    while job.has_pending:
        segments = job.take_segments(1)
        for segment, output in zip(segments, run_batch(model, segments), strict=True):
            job.complete(segment, output)
    return job.stems().read(0, audio.frames)


def fidelity(args: argparse.Namespace, model: LoadedModel, config: PipelineConfig) -> None:
    """Each stem of each fast precision against fp32, on every song in ../shared/data."""
    songs = sorted(path for path in SHARED_DATA.iterdir() if path.suffix in (".mp3", ".ogg"))
    fast_settings = [s for s in args.precisions if resolve_precision(s, model.device) != "fp32"]
    print(f"\n== fidelity against fp32 (gate {FIDELITY_GATE_DB:.0f} dB per stem) ==")
    worst = -float("inf")
    for song in songs:
        with job_directory(config.tmp_root) as folder:
            reference = stems_of(with_precision(model, "fp32"), song, config, folder)
        for setting in fast_settings:
            fast_model = with_precision(model, setting)
            with job_directory(config.tmp_root) as folder:
                fast = stems_of(fast_model, song, config, folder)
            figures = [
                relative_error_db(fast[index], reference[index])
                for index in range(len(model.sources))
            ]
            worst = max(worst, *figures)
            print(
                f"{song.name:24s} {fast_model.precision}: "
                + "  ".join(
                    f"{name} {db:6.1f} dB" for name, db in zip(model.sources, figures, strict=True)
                )
            )
    if fast_settings:
        verdict = "PASS" if worst <= FIDELITY_GATE_DB else "FAIL"
        print(f"worst stem: {worst:.1f} dB  {verdict}")


def profile(args: argparse.Namespace, model: LoadedModel, config: PipelineConfig) -> None:
    """The default precision's pipeline stage by stage, as ``separate_song`` runs it."""
    precise = with_precision(model, args.precisions[0])
    stages = dict.fromkeys(
        ["decode", "input windows", "forward passes", "overlap-add", "peak scan", "encode 2 MP3"],
        0.0,
    )
    with job_directory(config.tmp_root) as folder:
        started = time.perf_counter()
        audio = decode_input(args.input, folder, config=config, sample_rate=model.samplerate)
        stages["decode"] = time.perf_counter() - started
        job = SeparationJob(precise, audio, folder, config.options)
        while job.has_pending:
            segments = job.take_segments(args.batch_size)
            started = time.perf_counter()
            for segment in segments:
                segment.build_input()
            stages["input windows"] += time.perf_counter() - started
            started = time.perf_counter()
            outputs = run_batch(precise, segments)  # builds the inputs again: subtracted
            stages["forward passes"] += time.perf_counter() - started
            started = time.perf_counter()
            for segment, output in zip(segments, outputs, strict=True):
                job.complete(segment, output)
            stages["overlap-add"] += time.perf_counter() - started
        stages["forward passes"] -= stages["input windows"]
        stems = job.stems()
        started = time.perf_counter()
        clip_gain(stems, "two")
        stages["peak scan"] = time.perf_counter() - started
        names = output_names(precise.sources, "two")
        started = time.perf_counter()
        rendered = render_outputs(
            stems,
            {name: folder / f"{name}.mp3" for name in names},
            stems="two",
            spec=EncodingSpec(),
            tags={name: Tags(title=name) for name in names},
            ffmpeg=config.ffmpeg,
            sample_rate=precise.samplerate,
        )
        stages["encode 2 MP3"] = time.perf_counter() - started - stages["peak scan"]
        assert all(path.stat().st_size > 0 for path in rendered.paths.values())
    total = sum(stages.values())
    print(
        f"\n== profile: {args.input.name}, {audio.duration_seconds:.1f} s, "
        f"{precise.precision}, {job.total_segments} segments, batch size {args.batch_size} =="
    )
    for stage, seconds in stages.items():
        print(f"{stage:16s} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")
    print(f"{'total':16s} {total:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--precisions",
        type=lambda text: text.split(","),
        default=["auto"],
        help="besides fp32, comma-separated (auto,bf16,fp16); the first is profiled",
    )
    parser.add_argument("--fidelity", action="store_true", help="bf16 vs fp32 on real songs")
    parser.add_argument("--profile", action="store_true", help="seconds per pipeline stage")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    tuned = keep_memory_mapped()  # as the CLI does, before any thread starts

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        network = build_htdemucs(HTDEMUCS_KWARGS)
        parameters = sum(p.numel() for p in network.parameters())
        save_repo_model(scratch / "models", "htdemucs", [network])
        model = load_model("htdemucs", repo=scratch / "models", device=device)
        config = PipelineConfig(
            ffmpeg=find_ffmpeg(),
            tmp_root=scratch / "tmp",
            limits=AudioLimits(max_duration_seconds=3600),
        )
        print(
            f"model: random htdemucs architecture, {parameters / 1e6:.2f} M parameters, "
            f"device {device}, torch threads {torch.get_num_threads()}, malloc tuned {tuned}"
        )
        if not args.skip_speed:
            speed(args, model, config, scratch)
        if args.fidelity:
            fidelity(args, model, config)
        if args.profile:
            profile(args, model, config)
    print(f"peak RSS of this process (MiB): {peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
