"""A re-render (key, tempo, guide vocal) of a separated song versus its separation.

One song of ``--song-seconds`` (real music from ../shared/data, looped) goes through the
worker pool with a random model of the exact ``htdemucs`` architecture in the default
precision; then the pool re-renders it from the lossless stems kept in its cache entry
with each control, and with all three at once. Prints seconds for each and the ratio to
the separation, and checks that the model ran no forward pass for any render.

    python benchmarks/controls_benchmark.py
    python benchmarks/controls_benchmark.py --song-seconds 60
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

from separation.audio.render_options import RenderOptions
from separation.jobs import RenderRequest, SeparationRequest
from separation.model.engine import Segment, run_batch
from separation.model.loading import LoadedModel
from separation.pool import PoolConfig, SeparationPool

CONTROLS = {
    "key -2": RenderOptions(key=-2),
    "tempo 0.9": RenderOptions(tempo=0.9),
    "guide -12 dB": RenderOptions(guide_db=-12),
    "all three": RenderOptions(key=-2, tempo=0.9, guide_db=-12),
}


async def measure(config: PoolConfig, model: LoadedModel, song: Path) -> None:
    forward_passes = 0

    def counted(model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        nonlocal forward_passes
        forward_passes += 1
        return run_batch(model, segments)

    pool = SeparationPool(config, lambda device: model, runner=counted)
    await pool.start()
    started = time.perf_counter()
    handle = await pool.submit(SeparationRequest(user_ref="bench", input_path=song))
    separated = await handle.result()
    separation = time.perf_counter() - started
    separated.release()
    passes = forward_passes
    print(
        f"separation (decode, {passes} forward passes, 2 MP3s, 2 FLAC stems): {separation:6.1f} s"
    )
    for label, options in CONTROLS.items():
        started = time.perf_counter()
        rendered = await pool.render(RenderRequest(separated.cache_key, options))
        seconds = time.perf_counter() - started
        rendered.release()
        print(
            f"{'re-render, ' + label + ' (2 MP3s):':52s} {seconds:6.1f} s  "
            f"= {seconds / separation:.3f} of the separation"
        )
    assert forward_passes == passes, "a render ran the model"
    print("forward passes during the renders: 0")
    await pool.shutdown(timeout=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--song-seconds", type=float, default=240.0)
    args = parser.parse_args()
    with one_song_pool(args.song_seconds) as (config, model, song):
        asyncio.run(measure(config, model, song))


if __name__ == "__main__":
    main()
