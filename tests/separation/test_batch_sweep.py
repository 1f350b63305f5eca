"""The batch size is chosen from a measured sweep: the smallest one about as fast as the best."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import nn

from separation.model.batch_sweep import recommend_batch_size, sweep_batch_sizes
from separation.model.batching import BatchScheduler
from separation.model.engine import run_batch
from separation.model.workers import Worker


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({1: 0.100, 2: 0.060, 4: 0.0395, 8: 0.039, 16: 0.038}, 4),  # 0.0395 <= 0.0399
        ({1: 0.100, 2: 0.060, 4: 0.041, 8: 0.039, 16: 0.038}, 8),  # 0.041 > 0.0399 >= 0.039
        ({1: 0.050, 2: 0.060, 4: 0.070}, 1),  # larger batches only cost (a CPU)
        ({1: 0.100, 2: 0.060, 4: 0.040, 8: None}, 4),  # out of memory at 8
        ({4: 0.030, 1: 0.100, 2: 0.060}, 4),  # order of the table does not matter
    ],
)
def test_the_smallest_size_within_tolerance_of_the_best_wins(table, expected):
    assert recommend_batch_size(table) == expected


def test_the_tolerance_edge_counts_as_within():
    assert recommend_batch_size({1: 0.105, 2: 0.100}, tolerance=0.05) == 1
    assert recommend_batch_size({1: 0.106, 2: 0.100}, tolerance=0.05) == 2
    assert recommend_batch_size({1: 0.106, 2: 0.100}, tolerance=0.0) == 2
    assert recommend_batch_size({1: 0.106, 2: 0.100}, tolerance=0.10) == 1


@pytest.mark.parametrize("table", [{}, {1: None}, {1: None, 2: None, 4: None}])
def test_nothing_measured_is_an_error(table):
    with pytest.raises(ValueError, match="no batch size was measured"):
        recommend_batch_size(table)


def test_sweep_measures_each_size_on_the_tiny_model(tiny_model):
    table = sweep_batch_sizes(tiny_model, (1, 2), repeats=1)
    assert list(table) == [1, 2]
    for seconds in table.values():
        assert isinstance(seconds, float)
        assert seconds > 0
    assert recommend_batch_size(table) in (1, 2)


def test_sweep_needs_a_timed_pass(tiny_model):
    with pytest.raises(ValueError, match="repeats"):
        sweep_batch_sizes(tiny_model, (1,), repeats=0)


class _MemoryBound(nn.Module):
    """A stand-in network that runs out of device memory above ``limit`` segments."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.batch_sizes: list[int] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(mix.shape[0])
        if mix.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return mix[:, None].repeat(1, 4, 1, 1)


def test_out_of_memory_is_recorded_and_larger_sizes_are_not_tried(tiny_model):
    network = _MemoryBound(limit=2)
    model = dataclasses.replace(tiny_model, sub_models=[network])
    table = sweep_batch_sizes(model, (1, 2, 4, 8), repeats=1)
    assert list(table) == [1, 2, 4]
    assert table[4] is None
    assert set(network.batch_sizes) == {1, 2, 4}
    assert recommend_batch_size(table) in (1, 2)


async def test_a_worker_takes_the_size_its_sweep_recommends(tiny_model, caplog):
    worker = Worker("w", tiny_model, BatchScheduler(), runner=run_batch, batch_size=4)
    try:
        with caplog.at_level(logging.INFO, logger="separation.model.workers"):
            chosen = await worker.choose_batch_size((1, 2))
    finally:
        worker.close()
    assert chosen in (1, 2) and worker.batch_limit == chosen
    assert f"batch size {chosen}" in caplog.text and "ms per segment" in caplog.text
