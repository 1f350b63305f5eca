"""Demucs inference split into segments we schedule ourselves.

``demucs.apply.apply_model`` walks one song one segment per forward pass. To batch
segments of several songs into one forward pass (and keep memory flat) we reproduce its
arithmetic step by step instead of calling it:

* every sub-model of a bag and every random shift is a *pass* over the song; the random
  shift offsets are drawn in ``apply_model``'s order (model outer, shift inner), so with
  the same seed the result is the same;
* a pass is cut at ``range(0, length, stride)`` into segments of the model's length; each
  segment's input is the window ``TensorChunk.padded`` would build (context from the
  neighbouring audio, zeros beyond the song), and its output is ``center_trim``-med;
* outputs are overlap-added with the same triangular weight and divided by the summed
  weight; passes are averaged over shifts and weighted per source over the bag.

Segments with the same ``batch_key`` (sub-model, input length) can share one forward
pass, whatever job they come from. Accumulators live in files read and written with
``pread``/``pwrite`` (not ``mmap``: dirty mapped pages would count against the process),
so a 12-minute song needs no more RAM than a 2-minute one.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from separation.audio.decode import DecodedAudio
from separation.model.loading import LoadedModel
from separation.model.precision import forward_precision
from separation.model.stems import SeparatedStems, _FloatFile

logger = logging.getLogger(__name__)

_FOLD_BLOCK_FRAMES = 1 << 18
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class SeparationOptions:
    """How to run the model; the defaults are ``demucs.api.Separator``'s, with shifts=0."""

    shifts: int = 0
    overlap: float = 0.25
    segment_seconds: float | None = None
    """Override of the model's segment length (``apply_model(segment=...)``)."""
    transition_power: float = 1.0


def segment_weight(segment_length: int, transition_power: float) -> torch.Tensor:
    """The triangular overlap-add weight of ``apply_model``, computed the same way."""
    weight = torch.cat(
        [
            torch.arange(1, segment_length // 2 + 1),
            torch.arange(segment_length - segment_length // 2, 0, -1),
        ]
    )
    return (weight / weight.max()) ** transition_power


@dataclass
class _Pass:
    index: int
    model_index: int
    shift: int
    """The random offset drawn for this pass (0 without shifts), as ``apply_model`` draws it."""
    origin: int
    """Position in the song of this pass's sample 0 (negative for a shifted pass)."""
    length: int
    trim: int
    """The pass output from ``trim`` on, ``frames`` long, is this pass's estimate."""
    segment_length: int
    offsets: list[int]
    weight: torch.Tensor
    factors: np.ndarray
    """Per source: bag weight / total bag weight / number of shifts."""
    accumulator: _FloatFile | None = None
    remaining: int = 0

    def segment_span(self, offset: int) -> int:
        return min(self.segment_length, self.length - offset)

    def weight_sum(self, start: int, stop: int) -> np.ndarray:
        """Sum of the overlap weights over pass positions [start, stop)."""
        total = np.zeros(stop - start, dtype=np.float32)
        weight = self.weight.numpy()
        for offset in self.offsets:
            span = self.segment_span(offset)
            lo, hi = max(start, offset), min(stop, offset + span)
            if lo < hi:
                total[lo - start : hi - start] += weight[lo - offset : hi - offset]
        return total


@dataclass(eq=False)
class Segment:
    """One model input: ``valid_length`` samples around pass position ``offset``."""

    job: SeparationJob
    pass_index: int
    model_index: int
    offset: int
    length: int
    valid_length: int

    @property
    def batch_key(self) -> tuple[int, int]:
        return (self.model_index, self.valid_length)

    def build_input(self) -> np.ndarray:
        return self.job.segment_input(self)


class SeparationJob:
    """The segments of one song and the accumulation of their outputs.

    Thread-safe: workers may take and complete segments of the same job concurrently.
    """

    def __init__(
        self,
        model: LoadedModel,
        audio: DecodedAudio,
        workdir: Path,
        options: SeparationOptions = SeparationOptions(),
        *,
        rng: random.Random | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if audio.sample_rate != model.samplerate:
            raise ValueError(f"audio at {audio.sample_rate} Hz, model at {model.samplerate} Hz")
        self.model = model
        self.audio = audio
        self.workdir = workdir
        self.options = options
        self._progress = progress
        self._lock = threading.Lock()
        self._mean = np.float32(audio.mean)
        self._std = np.float32(audio.std + 1e-8)  # as demucs.api.Separator does
        self._passes = self._plan_passes(rng if rng is not None else random.Random())
        self.total_segments = sum(len(p.offsets) for p in self._passes)
        self.completed_segments = 0
        self._next_pass = 0
        self._next_offset_index = 0
        self.result: _FloatFile | None = None
        self._width = len(model.sources) * model.audio_channels

    # -- planning -----------------------------------------------------------------------
    def _plan_passes(self, rng: random.Random) -> list[_Pass]:
        frames = self.audio.frames
        shifts = self.options.shifts
        max_shift = int(0.5 * self.model.samplerate)
        totals = np.sum(np.asarray(self.model.weights, dtype=np.float64), axis=0)
        passes: list[_Pass] = []
        for model_index, model_segment in enumerate(self.model.segments):
            segment = self.options.segment_seconds or model_segment
            segment_length = int(self.model.samplerate * segment)
            stride = int((1 - self.options.overlap) * segment_length)
            weight = segment_weight(segment_length, self.options.transition_power)
            factors = (
                np.asarray(self.model.weights[model_index], dtype=np.float64)
                / totals
                / max(shifts, 1)
            ).astype(np.float32)
            for _ in range(max(shifts, 1)):
                if shifts:
                    shift = rng.randint(0, max_shift)
                    origin, length, trim = (
                        shift - max_shift,
                        frames + max_shift - shift,
                        (max_shift - shift),
                    )
                else:
                    shift, origin, length, trim = 0, 0, frames, 0
                passes.append(
                    _Pass(
                        index=len(passes),
                        model_index=model_index,
                        shift=shift,
                        origin=origin,
                        length=length,
                        trim=trim,
                        segment_length=segment_length,
                        offsets=list(range(0, length, stride)),
                        weight=weight,
                        factors=factors,
                    )
                )
        for item in passes:
            item.remaining = len(item.offsets)
        return passes

    def _valid_length(self, model_index: int, span: int) -> int:
        sub_model = self.model.sub_models[model_index]
        from demucs.htdemucs import HTDemucs

        if isinstance(sub_model, HTDemucs) and self.options.segment_seconds is not None:
            return int(self.options.segment_seconds * self.model.samplerate)
        valid_length = getattr(sub_model, "valid_length", None)
        if callable(valid_length):
            return int(valid_length(span))
        return span

    # -- scheduling ---------------------------------------------------------------------
    @property
    def shift_offsets(self) -> list[tuple[int, int]]:
        """(sub-model index, random shift) of every pass, for reproducing a result."""
        return [(item.model_index, item.shift) for item in self._passes]

    @property
    def has_pending(self) -> bool:
        with self._lock:
            return self._next_pass < len(self._passes)

    def peek_key(self) -> tuple[int, int] | None:
        """The batch key of the next segment to take, or None when all are taken."""
        with self._lock:
            if self._next_pass >= len(self._passes):
                return None
            item = self._passes[self._next_pass]
            span = item.segment_span(item.offsets[self._next_offset_index])
            return (item.model_index, self._valid_length(item.model_index, span))

    def take_segments(self, limit: int, key: tuple[int, int] | None = None) -> list[Segment]:
        """Take up to ``limit`` next segments in order, stopping at one with another key."""
        taken: list[Segment] = []
        with self._lock:
            while len(taken) < limit and self._next_pass < len(self._passes):
                item = self._passes[self._next_pass]
                offset = item.offsets[self._next_offset_index]
                span = item.segment_span(offset)
                segment = Segment(
                    self,
                    item.index,
                    item.model_index,
                    offset,
                    span,
                    self._valid_length(item.model_index, span),
                )
                if key is not None and segment.batch_key != key:
                    break
                key = segment.batch_key
                if item.accumulator is None:
                    item.accumulator = _FloatFile(
                        self.workdir / f"pass-{item.index}.f32", item.length, self._width
                    )
                taken.append(segment)
                self._next_offset_index += 1
                if self._next_offset_index == len(item.offsets):
                    self._next_pass += 1
                    self._next_offset_index = 0
        return taken

    def segment_input(self, segment: Segment) -> np.ndarray:
        """The normalised model input for ``segment`` (zeros beyond the song)."""
        item = self._passes[segment.pass_index]
        start = item.origin + segment.offset - (segment.valid_length - segment.length) // 2
        stop = start + segment.valid_length
        window = self.audio.read(start, stop)
        inside = slice(max(0, -start), max(0, min(stop, self.audio.frames) - start))
        window[:, inside] = (window[:, inside] - self._mean) / self._std
        return window

    # -- accumulation -------------------------------------------------------------------
    def complete(self, segment: Segment, output: torch.Tensor) -> None:
        """Overlap-add one segment's ``(sources, channels, length)`` output."""
        item = self._passes[segment.pass_index]
        weighted = item.weight[: segment.length] * output.to("cpu", torch.float32)
        rows = weighted.permute(2, 0, 1).reshape(segment.length, self._width).numpy()
        with self._lock:
            assert item.accumulator is not None
            start, stop = segment.offset, segment.offset + segment.length
            item.accumulator.write(start, item.accumulator.read(start, stop) + rows)
            item.remaining -= 1
            if item.remaining == 0:
                self._fold(item)
            self.completed_segments += 1
            fraction = self.completed_segments / self.total_segments
        if self._progress is not None:
            self._progress(fraction)

    def _fold(self, item: _Pass) -> None:
        """Divide a finished pass by its weight sum and add it to the result."""
        assert item.accumulator is not None
        frames = self.audio.frames
        factors = np.repeat(item.factors, self.model.audio_channels)
        single_pass = len(self._passes) == 1 and np.all(factors == 1.0)
        if self.result is None:
            self.result = (
                item.accumulator
                if single_pass
                else _FloatFile(self.workdir / "stems.f32", frames, self._width)
            )
        for start in range(0, frames, _FOLD_BLOCK_FRAMES):
            stop = min(start + _FOLD_BLOCK_FRAMES, frames)
            block = item.accumulator.read(start + item.trim, stop + item.trim)
            block /= item.weight_sum(start + item.trim, stop + item.trim)[:, None]
            if single_pass:
                self.result.write(start, block)
            else:
                self.result.write(start, self.result.read(start, stop) + block * factors)
        if not single_pass:
            item.accumulator.delete()
        item.accumulator = None

    @property
    def done(self) -> bool:
        with self._lock:
            return self.completed_segments == self.total_segments

    def stems(self) -> SeparatedStems:
        if not self.done or self.result is None:
            raise RuntimeError("separation job is not finished")
        return SeparatedStems(
            self.result,
            self.audio.frames,
            list(self.model.sources),
            self.model.audio_channels,
            float(self._mean),
            float(self._std),
        )

    def discard(self) -> None:
        """Remove every accumulator file (on cancel or failure)."""
        with self._lock:
            for item in self._passes:
                if item.accumulator is not None:
                    item.accumulator.delete()
                    item.accumulator = None
            if self.result is not None:
                self.result.delete()
                self.result = None


def run_batch(model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
    """One forward pass over segments sharing a batch key; outputs center-trimmed, on CPU.

    On CUDA the inputs go up from pinned (page-locked) host memory with a non-blocking
    copy, and the outputs come back into a pinned buffer, so both copies run at full
    DMA speed instead of through a staging buffer; torch's caching host allocator
    reuses the pinned blocks from batch to batch. One synchronisation per batch waits
    for the copy back.
    """
    model_index = segments[0].model_index
    inputs = torch.from_numpy(np.stack([segment.build_input() for segment in segments]))
    sub_model = model.sub_models[model_index]
    on_cuda = model.device.type == "cuda"
    with torch.inference_mode():
        if on_cuda:
            inputs = inputs.pin_memory().to(model.device, non_blocking=True)
        with forward_precision(model.precision, model.device):
            outputs = sub_model(inputs.to(model.device))
        outputs = outputs.float()
        if on_cuda:
            host = torch.empty(outputs.shape, dtype=outputs.dtype, pin_memory=True)
            host.copy_(outputs, non_blocking=True)
            torch.cuda.current_stream(model.device).synchronize()
            outputs = host
    results = []
    for segment, output in zip(segments, outputs, strict=True):
        delta = output.shape[-1] - segment.length
        results.append(output[..., delta // 2 : delta // 2 + segment.length].to("cpu"))
    return results


def run_job(job: SeparationJob, *, batch_size: int = 1) -> SeparatedStems:
    """Run one job to the end on the calling thread (the CLI and tests use this)."""
    while job.has_pending:
        segments = job.take_segments(batch_size)
        for segment, output in zip(segments, run_batch(job.model, segments), strict=True):
            job.complete(segment, output)
    return job.stems()
