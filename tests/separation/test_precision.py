"""The fast forward pass stays faithful: bf16 stems against fp32 stems of the same model.

The gate (issue 14): on the real songs in ../shared/data, each stem's relative error
energy, 10*log10(sum((fast - fp32)^2) / sum(fp32^2)), is at most -40 dB. Here with the
tiny random model; ``benchmarks/separation_benchmark.py`` reports it for the full-size
architecture.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from separation.jobs import SeparationRequest
from separation.model.engine import SeparationJob, SeparationOptions, run_job
from separation.model.fidelity import relative_error_db
from separation.model.precision import native_bf16, resolve_precision
from tests.support.media import decode_file, excerpt
from tests.support.pool import make_pool

GATE_DB = -40.0
SONGS = ("demucs-test-clip.mp3", "lets-go-fishin.ogg", "vibe-ace.ogg")


def _stems(model, audio, folder: Path) -> np.ndarray:
    folder.mkdir()
    job = SeparationJob(model, audio, folder, SeparationOptions(), rng=random.Random(7))
    return run_job(job).read(0, audio.frames)


@pytest.mark.slow
@pytest.mark.parametrize("song", SONGS)
def test_bf16_stems_are_within_the_fidelity_gate_of_fp32(
    song, shared_music, tiny_model, ffmpeg, tmp_path
):
    clip = excerpt(shared_music / song, tmp_path / "clip.flac", ffmpeg, 12)
    audio = decode_file(clip, ffmpeg, tmp_path)
    reference = _stems(tiny_model, audio, tmp_path / "fp32")
    fast = _stems(dataclasses.replace(tiny_model, precision="bf16"), audio, tmp_path / "bf16")
    assert fast.dtype == np.float32  # accumulated in fp32 whatever the forward pass
    for index, source in enumerate(tiny_model.sources):
        error = relative_error_db(fast[index], reference[index])
        print(f"{song} {source}: {error:.1f} dB")
        assert error <= GATE_DB, (song, source, error)
        assert error > -200  # the bf16 path really ran (identical output would be -inf)


def test_auto_asks_torch_what_the_device_computes_natively():
    cpu = torch.device("cpu")
    expected = "bf16" if native_bf16(cpu) else "fp32"
    assert resolve_precision("auto", cpu) == expected
    assert [resolve_precision(p, cpu) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", cpu)


async def test_the_result_cache_keeps_each_precision_apart(
    tmp_path, ffmpeg, model_repo, tiny_model
):
    keys = {}
    for precision in ("fp32", "bf16"):
        pool = make_pool(
            ffmpeg=ffmpeg, tmp_root=tmp_path / precision / "tmp",
            cache_dir=tmp_path / precision / "cache", model="tiny", repo=model_repo,
            loaded={("tiny", "cpu"): dataclasses.replace(tiny_model, precision=precision)},
        )  # fmt: skip
        await pool.start()
        try:
            request = SeparationRequest(user_ref="cli", input_path=tmp_path / "song.mp3")
            keys[precision] = pool.result_key(request, "0" * 64)
        finally:
            await pool.shutdown(timeout=0)
    assert keys["fp32"] != keys["bf16"]
