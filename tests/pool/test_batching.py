"""Segments of several songs share forward passes and still give apply_model's result."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import torch
from demucs.apply import BagOfModels, TensorChunk, apply_model

from separation.audio.decode import DecodedAudio
from separation.model.batching import BatchScheduler, SegmentTooLargeError, run_isolated
from separation.model.engine import SeparationJob, SeparationOptions, run_batch
from separation.model.loading import LoadedModel
from separation.model.workers import Worker
from tests.support.media import short_excerpt
from tests.support.pool import CountingRunner, FailingRunner, out_of_memory

TOLERANCE = 1e-4
MAX_SHIFT = 22050


def _normalised(job: SeparationJob) -> torch.Tensor:
    wav = torch.from_numpy(job.audio.read_all())
    return (wav - job._mean) / job._std


def _reference(model: LoadedModel, job: SeparationJob) -> torch.Tensor:
    """What apply_model gives for this job (its own shift offsets replayed when shifts>0)."""
    mix = _normalised(job)[None]
    if job.options.shifts == 0:
        demucs_model = (
            model.sub_models[0]
            if len(model.sub_models) == 1
            else BagOfModels(model.sub_models, model.weights)
        )
        return apply_model(demucs_model, mix, shifts=0, overlap=job.options.overlap)[0]
    length = mix.shape[-1]
    padded = TensorChunk(mix).padded(length + 2 * MAX_SHIFT)
    weights = torch.tensor(model.weights)
    total = torch.zeros(len(model.sources), 2, length)
    for model_index, shift in job.shift_offsets:
        shifted = TensorChunk(padded, shift, length + MAX_SHIFT - shift)
        out = apply_model(model.sub_models[model_index], shifted, shifts=0)[0]
        total += weights[model_index][:, None, None] * out[..., MAX_SHIFT - shift :]
    return total / job.options.shifts / weights.sum(dim=0)[:, None, None]


async def _separate_together(
    model: LoadedModel,
    songs: list[DecodedAudio],
    folder: Path,
    *,
    batch_size: int,
    options: SeparationOptions | None = None,
    runner=run_batch,
) -> tuple[list[SeparationJob], Worker]:
    scheduler = BatchScheduler()
    jobs = []
    for index, audio in enumerate(songs):
        workdir = folder / f"job-{index}"
        workdir.mkdir()
        jobs.append(
            SeparationJob(
                model, audio, workdir, options or SeparationOptions(), rng=random.Random(index)
            )
        )
    entries = [scheduler.add(job) for job in jobs]
    worker = Worker("test", model, scheduler, runner=runner, batch_size=batch_size)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.gather(*(entry.finished for entry in entries))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        worker.close()
    return jobs, worker


def _ours(job: SeparationJob) -> torch.Tensor:
    return torch.from_numpy(job.stems().read(0, job.audio.frames, normalised=True))


@pytest.fixture
def songs(decoded_clip: DecodedAudio, tmp_path: Path) -> list[DecodedAudio]:
    """Three songs of different lengths (1, 1 and 2 segments of the tiny model)."""
    return [short_excerpt(decoded_clip, tmp_path, seconds) for seconds in (2.0, 3.0, 5.5)]


async def test_batched_jobs_of_different_lengths_equal_apply_model(tiny_model, songs, tmp_path):
    runner = CountingRunner()
    jobs, _ = await _separate_together(tiny_model, songs, tmp_path, batch_size=4, runner=runner)
    assert runner.batches == [4]  # all four segments of three songs in one forward pass
    assert runner.segments == sum(job.total_segments for job in jobs)
    for job in jobs:
        reference = _reference(tiny_model, job)
        ours = _ours(job)
        assert ours.shape == reference.shape
        assert float((ours - reference).abs().max()) < TOLERANCE
        assert float(reference.abs().max()) > 0.01


async def test_a_bag_with_shifts_batched_across_jobs(tiny_bag, songs, tmp_path):
    options = SeparationOptions(shifts=1)  # one random shift: apply_model's shifted path
    jobs, _ = await _separate_together(tiny_bag, songs[:2], tmp_path, batch_size=3, options=options)
    for job in jobs:
        assert len(job.shift_offsets) == 2  # one pass per sub-model
        assert float((_ours(job) - _reference(tiny_bag, job)).abs().max()) < TOLERANCE


async def test_out_of_memory_splits_the_batch_and_lowers_the_worker_batch_size(
    tiny_model, songs, tmp_path
):
    runner = FailingRunner(lambda segments: len(segments) > 1, out_of_memory)
    jobs, worker = await _separate_together(
        tiny_model, songs[:2], tmp_path, batch_size=4, runner=runner
    )
    assert runner.failures > 0 and set(runner.batches) == {1}
    assert worker.batch_limit < 4
    for job in jobs:
        assert float((_ours(job) - _reference(tiny_model, job)).abs().max()) < TOLERANCE


def test_run_isolated_fails_only_the_segment_that_raises(tiny_model, songs, tmp_path):
    job = SeparationJob(tiny_model, songs[2], tmp_path, SeparationOptions())
    segments = job.take_segments(3)
    assert len(segments) == 2
    bad = segments[1]

    def runner(model, batch):
        if any(segment is bad for segment in batch):
            raise ValueError("broken segment")
        return run_batch(model, batch)

    outcome = run_isolated(runner, tiny_model, segments)
    assert isinstance(outcome.outputs[1], ValueError)
    assert isinstance(outcome.outputs[0], torch.Tensor)
    assert not outcome.out_of_memory
    alone = run_isolated(
        lambda model, batch: (_ for _ in ()).throw(out_of_memory()), tiny_model, segments[:1]
    )
    assert isinstance(alone.outputs[0], SegmentTooLargeError) and alone.out_of_memory


async def test_batches_take_segments_round_robin_from_jobs(tiny_model, songs, tmp_path):
    scheduler = BatchScheduler()
    jobs = []
    for index, audio in enumerate(songs):
        (tmp_path / str(index)).mkdir()
        jobs.append(SeparationJob(tiny_model, audio, tmp_path / str(index), SeparationOptions()))
    for job in jobs:
        scheduler.add(job)
    batch = scheduler.take(3)
    assert [segment.job for segment in batch.segments] == jobs  # one from each song
    assert [entry.in_flight for entry in batch.entries] == [1, 1, 1]
    batch = scheduler.take(3)  # only the longest song has a segment left
    assert [segment.job for segment in batch.segments] == [jobs[2]]
    assert batch.entries[0].in_flight == 2
