"""The engine reproduces demucs.apply.apply_model on real music, segment by segment."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from demucs.apply import BagOfModels, TensorChunk, apply_model

from separation.model.engine import SeparationJob, SeparationOptions, run_job
from tests.support.media import short_excerpt

TOLERANCE = 1e-4


def _normalised(job: SeparationJob) -> torch.Tensor:
    wav = torch.from_numpy(job.audio.read_all())
    return (wav - job._mean) / job._std


def _reference(model, job: SeparationJob, **kwargs) -> torch.Tensor:
    return apply_model(model, _normalised(job)[None], shifts=0, **kwargs)[0]


def _as_demucs_model(loaded):
    if len(loaded.sub_models) == 1:
        return loaded.sub_models[0]
    return BagOfModels(loaded.sub_models, loaded.weights)


def _separate(model, audio, tmp_path, batch_size=1, **options):
    job = SeparationJob(model, audio, tmp_path, SeparationOptions(**options), rng=random.Random(7))
    stems = run_job(job, batch_size=batch_size)
    return job, torch.from_numpy(stems.read(0, audio.frames, normalised=True))


@pytest.fixture
def excerpt(decoded_clip, tmp_path):
    """9 s of the real clip: three segments of the tiny model, a short last one included."""
    return short_excerpt(decoded_clip, tmp_path, 9.0)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_matches_apply_model_on_real_music(tiny_model, decoded_clip, tmp_path, batch_size):
    job, ours = _separate(tiny_model, decoded_clip, tmp_path, batch_size=batch_size)
    reference = _reference(tiny_model.sub_models[0], job)
    assert ours.shape == reference.shape == (4, 2, decoded_clip.frames)
    assert float((ours - reference).abs().max()) < TOLERANCE
    assert float(reference.abs().max()) > 0.01  # a non-trivial comparison


def test_matches_apply_model_with_other_overlap(tiny_model, excerpt, tmp_path):
    job, ours = _separate(tiny_model, excerpt, tmp_path, overlap=0.5)
    reference = _reference(tiny_model.sub_models[0], job, overlap=0.5)
    assert float((ours - reference).abs().max()) < TOLERANCE


def test_matches_apply_model_for_a_bag_of_models(tiny_bag, excerpt, tmp_path):
    job, ours = _separate(tiny_bag, excerpt, tmp_path, batch_size=2)
    reference = _reference(_as_demucs_model(tiny_bag), job)
    assert float((ours - reference).abs().max()) < TOLERANCE


def test_shifts_average_the_shifted_passes_like_apply_model(tiny_model, excerpt, tmp_path):
    """apply_model's own offsets cannot be seeded (HTDemucs' transformer draws from the
    global RNG on every forward), so the reference is rebuilt from the offsets we drew."""
    job, ours = _separate(tiny_model, excerpt, tmp_path, batch_size=2, shifts=2)
    mix = _normalised(job)[None]
    length, max_shift = mix.shape[-1], 22050
    padded = TensorChunk(mix).padded(length + 2 * max_shift)
    passes = [
        apply_model(
            tiny_model.sub_models[0],
            TensorChunk(padded, shift, length + max_shift - shift),
            shifts=0,
        )[0, ..., max_shift - shift :]
        for _, shift in job.shift_offsets
    ]
    assert len({shift for _, shift in job.shift_offsets}) == 2
    reference = sum(passes) / len(passes)
    assert float((ours - reference).abs().max()) < TOLERANCE


def test_shift_offsets_are_drawn_like_apply_model(tiny_bag, decoded_clip, tmp_path):
    job = SeparationJob(
        tiny_bag, decoded_clip, tmp_path, SeparationOptions(shifts=3), rng=random.Random(11)
    )
    expected_rng = random.Random(11)
    expected = [(model, expected_rng.randint(0, 22050)) for model in range(2) for _ in range(3)]
    assert job.shift_offsets == expected


def test_progress_is_reported_up_to_one(tiny_model, excerpt, tmp_path):
    fractions: list[float] = []
    job = SeparationJob(tiny_model, excerpt, tmp_path, progress=fractions.append)
    run_job(job, batch_size=2)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert len(fractions) == job.total_segments


def test_segments_of_different_jobs_share_a_forward_pass(tiny_model, decoded_clip, tmp_path):
    """The batching primitive the pool builds on: same key, different songs."""
    from separation.model.engine import run_batch

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    short = short_excerpt(decoded_clip, tmp_path, 9.0)
    first = SeparationJob(tiny_model, decoded_clip, tmp_path / "a")
    second = SeparationJob(tiny_model, short, tmp_path / "b")
    while first.has_pending or second.has_pending:
        batch = []
        for job in (first, second):
            key = job.peek_key()
            if key is not None and (not batch or key == batch[0].batch_key):
                batch += job.take_segments(2, key)
        for segment, output in zip(batch, run_batch(tiny_model, batch), strict=True):
            segment.job.complete(segment, output)
    for job in (first, second):
        ours = torch.from_numpy(job.stems().read(0, job.audio.frames, normalised=True))
        reference = _reference(tiny_model.sub_models[0], job)
        assert float((ours - reference).abs().max()) < TOLERANCE


def test_memory_does_not_hold_the_stems(tiny_model, decoded_clip, tmp_path):
    """Accumulators are files: the job object holds no full-length arrays."""
    job = SeparationJob(tiny_model, decoded_clip, tmp_path)
    run_job(job)
    big = [
        value
        for value in vars(job).values()
        if isinstance(value, np.ndarray | torch.Tensor) and value.size > 100_000
    ]
    assert big == []
    assert job.result is not None and job.result.path.stat().st_size == (
        decoded_clip.frames * 4 * 2 * 4
    )


def test_discard_removes_accumulators(tiny_model, excerpt, tmp_path):
    job = SeparationJob(tiny_model, excerpt, tmp_path, SeparationOptions(shifts=1))
    segments = job.take_segments(1)
    from separation.model.engine import run_batch

    job.complete(segments[0], run_batch(tiny_model, segments)[0])
    assert list(tmp_path.glob("pass-*.f32"))
    job.discard()
    assert not list(tmp_path.glob("pass-*.f32")) and not list(tmp_path.glob("stems.f32"))
