"""Turning separated stems into the files users receive.

Two-stem mode sums every non-vocal source into the instrumental (drums + bass + other,
plus guitar + piano for 6-source models); four-stem mode returns every source as is. No
per-output rescaling changes the balance between outputs: instrumental + vocals add back
up to what the model produced. When an output would clip, one gain is applied to all of
them together, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from separation.audio.encode import EncodingSpec, StemMode, StreamingEncoder, Tags
from separation.jobs import INSTRUMENTAL
from separation.model.engine import SeparatedStems
from separation.model.loading import VOCALS

logger = logging.getLogger(__name__)

BLOCK_FRAMES = 1 << 18
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
    separated: SeparatedStems, stems: StemMode, block_frames: int = BLOCK_FRAMES
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
    return gain_for_peak(peak)


def log_shared_gain(gain: float, what: str = "outputs") -> None:
    """Say in the log when ``gain`` (below 1) is applied to all outputs so none clips."""
    if gain < 1.0:
        logger.info(
            "%s would clip: applying one gain of %.2f dB to all of them", what, 20 * np.log10(gain)
        )


def gain_for_peak(peak: float) -> float:
    """1.0 when ``peak`` fits in full scale, else the gain that brings it just below."""
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
    parallel_encoders: int | None = None,
) -> RenderedOutputs:
    """Encode each output of ``stems`` to ``paths[name]``.

    ``parallel_encoders`` encoders run at a time (default: all), each group fed from
    its own read of the stems: the pool passes the ffmpeg runs its CPU budget grants
    (``separation.cpu_budget``), one at a time on a 2-core box.

    Raises:
        AudioExportError: an encoder failed; no output, partial or complete, is left.
    """
    gain = clip_gain(separated, stems)
    log_shared_gain(gain)
    written = encode_in_groups(
        separated,
        {name: paths[name] for name in output_names(separated.sources, stems)},
        stems=stems,
        gain=gain,
        spec=spec,
        tags=tags,
        ffmpeg=ffmpeg,
        sample_rate=sample_rate,
        parallel_encoders=parallel_encoders,
    )
    return RenderedOutputs(paths=written, gain=gain)


def encode_in_groups(
    separated: SeparatedStems,
    paths: dict[str, Path],
    *,
    stems: StemMode,
    gain: float,
    spec: EncodingSpec,
    tags: dict[str, Tags],
    ffmpeg: str,
    sample_rate: int,
    parallel_encoders: int | None = None,
) -> dict[str, Path]:
    """Encode the outputs named in ``paths``, ``parallel_encoders`` at a time (default:
    all), each group from its own read of the stems; all or nothing.

    Raises:
        AudioExportError: an encoder failed; no output, partial or complete, is left.
    """
    names = list(paths)
    group_size = max(1, parallel_encoders or len(names))
    written: dict[str, Path] = {}
    try:
        for first in range(0, len(names), group_size):
            group = names[first : first + group_size]
            blocks = (
                {name: block[name] for name in group} for block in iter_outputs(separated, stems)
            )
            written |= encode_outputs(
                blocks,
                {name: paths[name] for name in group},
                gain=gain,
                spec=spec,
                tags=tags,
                ffmpeg=ffmpeg,
                sample_rate=sample_rate,
                channels=separated.channels,
            )
    except BaseException:
        for path in written.values():  # all or nothing, across groups too
            path.unlink(missing_ok=True)
        raise
    return {name: written[name] for name in names}


def encode_outputs(
    blocks: Iterable[dict[str, np.ndarray]],
    paths: dict[str, Path],
    *,
    gain: float,
    spec: EncodingSpec,
    tags: dict[str, Tags],
    ffmpeg: str,
    sample_rate: int,
    channels: int,
) -> dict[str, Path]:
    """Encode ``{name: (channels, n)}`` blocks, times ``gain``, to ``paths[name]``.

    One encoder per output, all running in parallel; a name missing from a block simply
    has no samples in it (outputs may end at different blocks).

    Raises:
        AudioExportError: an encoder failed; every encoder is aborted and no output,
            partial or complete, is left behind.
    """
    encoders: dict[str, StreamingEncoder] = {}
    written: dict[str, Path] = {}
    try:
        for name, path in paths.items():
            encoders[name] = StreamingEncoder(
                path,
                spec,
                tags.get(name, Tags()),
                ffmpeg=ffmpeg,
                sample_rate=sample_rate,
                channels=channels,
            )
        for block in blocks:
            for name, samples in block.items():
                encoders[name].write(samples * np.float32(gain) if gain < 1.0 else samples)
        for name, encoder in encoders.items():
            written[name] = encoder.close()
    except BaseException:
        for encoder in encoders.values():
            encoder.abort()
        for path in written.values():  # all or nothing: a lone instrumental is no result
            path.unlink(missing_ok=True)
        raise
    return written
