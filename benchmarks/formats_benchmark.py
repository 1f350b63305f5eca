"""A second format of a song already separated versus its separation (issue 23).

One song of ``--song-seconds`` (real music from ../shared/data) goes through the worker
pool as MP3 with a random model of the exact ``htdemucs`` architecture; then the same
song is asked for again in each of ``--formats``. With the song's lossless stems kept in
its cache entry, each is an encode from them (seconds of ffmpeg, no forward pass);
before issue 23 each was a whole separation again. Prints seconds and forward passes.

    python benchmarks/formats_benchmark.py
    python benchmarks/formats_benchmark.py --song-seconds 133 --formats flac opus wav
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pool_benchmark import one_song_pool

from separation.audio.encode import EncodingSpec, OutputFormat
from separation.jobs import SeparationRequest
from separation.model.engine import Segment, run_batch
from separation.model.loading import LoadedModel
from separation.pool import PoolConfig, SeparationPool


async def measure(
    config: PoolConfig, model: LoadedModel, song: Path, formats: list[OutputFormat]
) -> None:
    forward_passes = 0

    def counted(model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        nonlocal forward_passes
        forward_passes += 1
        return run_batch(model, segments)

    pool = SeparationPool(config, lambda device: model, runner=counted)
    await pool.start()
    for label, spec in [("first, mp3", EncodingSpec()), *((f, EncodingSpec(f)) for f in formats)]:
        before = forward_passes
        started = time.perf_counter()
        handle = await pool.submit(
            SeparationRequest(user_ref="bench", input_path=song, encoding=spec)
        )
        result = await handle.result()
        seconds = time.perf_counter() - started
        result.release()
        print(f"{label:12s} {seconds:6.1f} s  forward passes {forward_passes - before}")
    await pool.shutdown(timeout=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--song-seconds", type=float, default=60.0)
    parser.add_argument("--formats", nargs="+", default=["flac", "opus", "wav"])
    args = parser.parse_args()
    with one_song_pool(args.song_seconds) as (config, model, song):
        asyncio.run(measure(config, model, song, args.formats))


if __name__ == "__main__":
    main()
