"""The pool shares the CPU: ffmpeg runs take threads from the model step, never more
than the budget's slots run at once (``separation.cpu_budget``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import torch

from separation.cpu_budget import CpuPlan
from separation.model.engine import Segment, SeparationJob, run_batch
from separation.model.loading import LoadedModel
from tests.support.ffmpeg_log import ffmpeg_runs, most_at_once, wrapped_ffmpeg
from tests.support.pool import read_audio, request


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class ThreadRecordingRunner:
    """``run_batch`` that records torch's thread count as each forward pass starts."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self, model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        self.threads.append(torch.get_num_threads())
        return run_batch(model, segments)


async def test_the_model_step_gives_a_thread_to_each_running_ffmpeg(make_pool, clips):
    runner = ThreadRecordingRunner()
    pool = await make_pool(runner=runner, cpu=CpuPlan.for_cores(3, 3), batch_size=1)
    async with pool.cpu.audio(1):  # another song's encoder, say
        await (await pool.submit(request(clips[3], user="a"))).result()
    held = list(runner.threads)
    runner.threads.clear()
    await (await pool.submit(request(clips[5], user="b"))).result()
    assert held and set(held) == {2}
    assert runner.threads and set(runner.threads) == {3}


async def test_songs_in_the_pool_run_one_ffmpeg_at_a_time_on_two_cores(
    make_pool, clips, tmp_path, ffmpeg
):
    wrapper, log = wrapped_ffmpeg(tmp_path, ffmpeg, pause=0.1)
    runner = ThreadRecordingRunner()
    pool = await make_pool(
        runner=runner, ffmpeg=wrapper, cpu=CpuPlan.for_cores(2, 2), max_running_jobs=3
    )
    handles = [
        await pool.submit(request(clips[seconds], user=str(seconds))) for seconds in (3, 5, 7)
    ]
    await asyncio.gather(*(handle.result() for handle in handles))
    on_songs = [run for run in ffmpeg_runs(log) if "-decoders" not in run]
    # A decode each, then 2 encoders and 2 lossless stems each (the header is read by
    # separation.audio.probe's reader, not by ffmpeg).
    assert len(on_songs) == 3 + 3 * 2 * 2
    assert most_at_once(log) == 1
    assert runner.threads and set(runner.threads) <= {1, 2}


async def test_overlapped_accumulation_gives_the_same_songs(
    make_pool, clips, tmp_path, ffmpeg, monkeypatch
):
    """What a GPU worker does (accumulate on a second thread during the next forward
    pass), run on the CPU: same outputs as one thread doing both."""
    threads: set[str] = set()
    complete = SeparationJob.complete

    def observed(job: SeparationJob, segment: Segment, output: torch.Tensor) -> None:
        threads.add(threading.current_thread().name)
        complete(job, segment, output)

    outputs = {}
    for overlap in (False, True):
        monkeypatch.setattr(SeparationJob, "complete", observed if overlap else complete)
        pool = await make_pool(
            overlap_accumulation=overlap, batch_size=2, cache_dir=tmp_path / f"cache-{overlap}"
        )
        handles = [await pool.submit(request(clips[s], user=str(s))) for s in (3, 5, 7)]
        results = await asyncio.gather(*(handle.result() for handle in handles))
        outputs[overlap] = [read_audio(r.outputs["instrumental"], ffmpeg) for r in results]
    assert threads and all("-accumulate" in name for name in threads)
    for serial, overlapped in zip(outputs[False], outputs[True], strict=True):
        np.testing.assert_allclose(overlapped, serial, atol=1e-6)
