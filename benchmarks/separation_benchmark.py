"""Whole pipeline (decode + separate + encode) versus a bare ``apply_model`` call.

Builds a random model with the exact pretrained ``htdemucs`` architecture (weights do
not change cost), saves it in a temporary --repo folder and loads it through
``separation.models.load_model`` like production. Then, in one process, on the same
file: ``demucs.apply.apply_model`` on the already decoded, normalised audio (the
reference), and our pipeline from the input file to encoded MP3s. Prints the figures.

    python benchmarks/separation_benchmark.py ../shared/data/demucs-test-clip.mp3
    python benchmarks/separation_benchmark.py song.mp3 --device cuda --repeat 2
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demucs.apply import apply_model

from separation.decode import AudioLimits
from separation.ffmpeg import find_ffmpeg
from separation.models import load_model, resolve_device
from separation.pipeline import PipelineConfig, Song, decode_input, separate_file
from separation.random_models import HTDEMUCS_KWARGS, build_htdemucs, save_repo_model
from separation.workdir import job_directory


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()

    device = resolve_device(args.device)
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        model_net = build_htdemucs(HTDEMUCS_KWARGS)
        parameters = sum(p.numel() for p in model_net.parameters())
        save_repo_model(scratch_path / "models", "htdemucs", [model_net])
        model = load_model("htdemucs", repo=scratch_path / "models", device=device)
        config = PipelineConfig(
            ffmpeg=ffmpeg,
            tmp_root=scratch_path / "tmp",
            limits=AudioLimits(max_duration_seconds=3600),
        )

        with job_directory(scratch_path / "tmp") as workdir:
            audio = decode_input(args.input, workdir, config=config, sample_rate=44100)
            wav = torch.from_numpy(audio.read_all())
            mix = ((wav - wav.mean(0).mean()) / (wav.mean(0).std() + 1e-8))[None]
            reference_times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                apply_model(model.sub_models[0], mix, shifts=0, device=device)
                reference_times.append(time.perf_counter() - started)
            seconds = audio.duration_seconds
            del wav, mix

        pipeline_times = []
        for run in range(args.repeat):
            out = scratch_path / f"out-{run}"
            out.mkdir()
            started = time.perf_counter()
            asyncio.run(
                separate_file(
                    Song(args.input), out, model=model, config=config, batch_size=args.batch_size
                )
            )
            pipeline_times.append(time.perf_counter() - started)

    reference, ours = min(reference_times), min(pipeline_times)
    print(
        f"model: random htdemucs architecture, {parameters / 1e6:.2f} M parameters, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"audio seconds:                         {seconds:.2f}")
    print(f"apply_model on decoded audio (wall s): {reference:.2f}")
    print(f"pipeline decode+separate+encode (s):   {ours:.2f}")
    print(f"ratio pipeline / apply_model:          {ours / reference:.3f}  (target <= 1.10)")
    print(f"real-time factor of the pipeline:      {ours / seconds:.3f}")
    print(f"peak RSS of this process (MiB):        {peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
