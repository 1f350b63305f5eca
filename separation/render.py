"""Turning separated stems into the files users receive.

Two-stem mode sums every non-vocal source into the instrumental (drums + bass + other,
plus guitar + piano for 6-source models); four-stem mode returns every source as is. No
per-output rescaling changes the balance between outputs: instrumental + vocals add back
up to what the model produced. When an output would clip, one gain is applied to all of
them together, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from separation.encode import EncodingSpec, StemMode, StreamingEncoder, Tags
from separation.engine import SeparatedStems
from separation.models import VOCALS

logger = logging.getLogger(__name__)

INSTRUMENTAL = "instrumental"
_BLOCK_FRAMES = 1 << 18
# Headroom kept below full scale when a gain has to be applied.
_CLIP_TARGET = 0.999


def output_names(sources: list[str], stems: StemMode) -> list[str]:
    """Names of the files a separation produces, instrumental first."""
    if stems == "two":
        return [INSTRUMENTAL, VOCALS]
    return list(sources)


def _mix_block(block: np.ndarray, sources: list[str], stems: StemMode) -> dict[str, np.ndarray]:
    if stems == "four":
        return {name: block[index] for index, name in enumerate(sources)}
    vocals_index = sources.index(VOCALS)
    accompaniment = [index for index in range(len(sources)) if index != vocals_index]
    return {INSTRUMENTAL: block[accompaniment].sum(axis=0), VOCALS: block[vocals_index]}


def iter_outputs(
    separated: SeparatedStems, stems: StemMode, block_frames: int = _BLOCK_FRAMES
) -> Iterator[dict[str, np.ndarray]]:
    """The outputs block by block, ``{name: (channels, n)}``, before any gain."""
    for start in range(0, separated.frames, block_frames):
        stop = min(start + block_frames, separated.frames)
        yield _mix_block(separated.read(start, stop), separated.sources, stems)


def clip_gain(separated: SeparatedStems, stems: StemMode) -> float:
    """1.0, or the single gain that keeps every output below full scale."""
    peak = 0.0
    for block in iter_outputs(separated, stems):
        peak = max(peak, *(float(np.abs(samples).max(initial=0.0)) for samples in block.values()))
    return 1.0 if peak <= 1.0 else _CLIP_TARGET / peak


@dataclass(frozen=True)
class RenderedOutputs:
    paths: dict[str, Path]
    gain: float


def render_outputs(
    separated: SeparatedStems,
    paths: dict[str, Path],
    *,
    stems: StemMode,
    spec: EncodingSpec,
    tags: dict[str, Tags],
    ffmpeg: str,
    sample_rate: int,
) -> RenderedOutputs:
    """Encode each output of ``mode`` to ``paths[name]`` (all encoders run in parallel).

    Raises:
        AudioExportError: an encoder failed; no partial file is left behind.
    """
    gain = clip_gain(separated, stems)
    if gain < 1.0:
        logger.info(
            "outputs would clip: applying one gain of %.2f dB to all of them", 20 * np.log10(gain)
        )
    encoders: dict[str, StreamingEncoder] = {}
    try:
        for name in output_names(separated.sources, stems):
            encoders[name] = StreamingEncoder(
                paths[name],
                spec,
                tags.get(name, Tags()),
                ffmpeg=ffmpeg,
                sample_rate=sample_rate,
                channels=separated.channels,
            )
        for block in iter_outputs(separated, stems):
            for name, samples in block.items():
                encoders[name].write(samples * np.float32(gain) if gain < 1.0 else samples)
        written = {name: encoder.close() for name, encoder in encoders.items()}
    except BaseException:
        for encoder in encoders.values():
            encoder.abort()
        raise
    return RenderedOutputs(paths=written, gain=gain)
