"""The first render: the separated stems mixed into the files users receive.

Two-stem mode sums every non-vocal source into the instrumental (drums + bass + other,
plus guitar + piano for 6-source models); four-stem mode returns every source as is.
The mix is all this module adds: the shared clip gain and the encoders are the one path
every render takes (``separation.rendering.outputs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from separation.audio.encode import EncodingSpec, StemMode, Tags
from separation.jobs import INSTRUMENTAL
from separation.model.loading import VOCALS
from separation.model.stems import SeparatedStems
from separation.rendering.outputs import Encoding, RenderedOutputs, gain_for_peak, render

BLOCK_FRAMES = 1 << 18


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
    separated: SeparatedStems, stems: StemMode, block_frames: int = BLOCK_FRAMES
) -> Iterator[dict[str, np.ndarray]]:
    """The outputs block by block, ``{name: (channels, n)}``, before any gain."""
    for start in range(0, separated.frames, block_frames):
        stop = min(start + block_frames, separated.frames)
        yield _mix_block(separated.read(start, stop), separated.sources, stems)


@dataclass(frozen=True)
class MixedStems:
    """The outputs of ``stems`` mode mixed from the separated stems, as
    ``separation.rendering.outputs`` reads them."""

    separated: SeparatedStems
    stems: StemMode

    @property
    def channels(self) -> int:
        return self.separated.channels

    def peak(self) -> float:
        """A pass over the whole song."""
        peak = 0.0
        for block in iter_outputs(self.separated, self.stems):
            levels = (float(np.abs(samples).max(initial=0.0)) for samples in block.values())
            peak = max(peak, *levels)
        return peak

    def blocks(self, names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        return (
            {name: block[name] for name in names}
            for block in iter_outputs(self.separated, self.stems)
        )


def clip_gain(separated: SeparatedStems, stems: StemMode) -> float:
    """1.0, or the single gain that keeps every output below full scale."""
    return gain_for_peak(MixedStems(separated, stems).peak())


def render_outputs(
    separated: SeparatedStems,
    paths: dict[str, Path],
    *,
    stems: StemMode,
    spec: EncodingSpec,
    tags: dict[str, Tags],
    ffmpeg: str,
    sample_rate: int,
    parallel_encoders: int | None = None,
) -> RenderedOutputs:
    """Encode each output of ``stems`` to ``paths[name]`` (``outputs.render``).

    Raises:
        AudioExportError: an encoder failed; no output, partial or complete, is left.
    """
    return render(
        MixedStems(separated, stems),
        {name: paths[name] for name in output_names(separated.sources, stems)},
        Encoding(spec=spec, tags=tags, ffmpeg=ffmpeg, sample_rate=sample_rate),
        parallel_encoders=parallel_encoders,
    )
