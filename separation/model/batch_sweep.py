"""Choosing the segments per forward pass on a GPU from a measured sweep.

A GPU runs one ``htdemucs`` segment far below its capacity, so several segments (of one
song or of several) share a forward pass (``pool.batch_size``). Past some size a larger
batch is no faster per segment, yet it still costs memory and makes every song wait for
more work before its segments come back. Which size that is depends on the GPU, the
model and the precision, so it is measured on the machine rather than guessed: a few
forward passes on silence at each size, then the smallest size that is within a few
percent of the fastest.

This runs at worker start-up on CUDA when no batch size is configured, and in
``benchmarks/gpu_check.py``. On CPU a batch larger than one is not faster (README,
"Expected speed"), so the pool does not sweep there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import torch

from separation.model.batching import is_out_of_memory
from separation.model.loading import LoadedModel
from separation.model.precision import forward_precision

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16)


def recommend_batch_size(
    seconds_per_segment: Mapping[int, float | None], tolerance: float = 0.05
) -> int:
    """The smallest batch size whose per-segment time is within ``tolerance`` of the best.

    Smaller wins among sizes that are about as fast: a song's segments come back sooner
    and the pass needs less memory, for a throughput the sweep cannot tell apart.

    Args:
        seconds_per_segment: per batch size, the seconds one segment cost in a pass of
            that size; None where the size ran out of memory (ignored).
        tolerance: how much slower than the best a size may be, as a fraction (0.05:
            up to 5 % more seconds per segment).

    Raises:
        ValueError: no size was measured (all ran out of memory, or the table is empty).
    """
    measured = {
        size: seconds for size, seconds in seconds_per_segment.items() if seconds is not None
    }
    if not measured:
        raise ValueError("no batch size was measured (all ran out of memory?)")
    best = min(measured.values())
    return min(size for size, seconds in measured.items() if seconds <= best * (1 + tolerance))


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work before reading a clock: a CUDA call returns
    before the forward pass it queued has run."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_pass_seconds(model: LoadedModel, size: int, repeats: int) -> float:
    sub_model = model.sub_models[0]
    segment_length = int(model.segments[0] * model.samplerate)
    inputs = torch.zeros(size, model.audio_channels, segment_length, device=model.device)
    times = []
    with torch.inference_mode(), forward_precision(model.precision, model.device):
        # The first pass at a new shape picks kernels (cuDNN, autocast): not timed.
        sub_model(inputs)
        synchronize(model.device)
        for _ in range(repeats):
            started = time.perf_counter()
            sub_model(inputs)
            synchronize(model.device)
            times.append(time.perf_counter() - started)
    return min(times)


def sweep_batch_sizes(
    model: LoadedModel, sizes: Sequence[int] = DEFAULT_SWEEP_SIZES, *, repeats: int = 2
) -> dict[int, float | None]:
    """Seconds per segment of a forward pass of sub-model 0 at each batch size.

    Each size gets one untimed pass, then ``repeats`` timed ones of which the best
    counts (the least disturbed by other work), divided by the size. ``model.precision``
    is used, as songs will be run. A size that runs out of memory is recorded as None
    and no larger size is tried (it would fail too, after a long allocation attempt).

    Args:
        model: the loaded model, on the device to measure.
        sizes: batch sizes in increasing order.
        repeats: timed passes per size (at least 1).

    Raises:
        ValueError: ``repeats`` is below 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    table: dict[int, float | None] = {}
    for size in sizes:
        try:
            table[size] = _best_pass_seconds(model, size, repeats) / size
            continue
        except Exception as error:
            if not is_out_of_memory(error):
                raise
        # Out of the except block, the traceback no longer holds the pass's tensors, so
        # the cache can give their memory back to the driver.
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
        logger.info("batch size %d ran out of memory on %s", size, model.device)
        table[size] = None
        break
    return table
