"""The one path from samples to the files users receive: one shared gain, encoders, outputs.

A first render (the separated stems, ``separation.rendering.render``), a re-render (a
key, tempo or guide change from the lossless stems, ``separation.rendering.controls``)
and the lossless stems themselves all end the same way, here: the outputs' samples, block
by block, times one gain shared by every output (1.0 unless one of them would clip), fed
to one ffmpeg encoder per output, all or nothing. What differs is only where the blocks
come from, so a render hands in an :class:`OutputBlocks` and this module does the rest.

No per-output rescaling changes the balance between outputs: instrumental + vocals add
back up to what the model produced. When an output would clip, one gain is applied to all
of them together, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from separation.audio.encode import EncodingSpec, StreamingEncoder, Tags
from separation.audio.render_options import RenderOptions

logger = logging.getLogger(__name__)

# Headroom kept below full scale when a gain has to be applied.
_CLIP_TARGET = 0.999


class OutputBlocks(Protocol):
    """Where a render's samples come from, before any gain."""

    @property
    def channels(self) -> int:
        """Channels of every output."""
        ...

    def peak(self) -> float:
        """The largest absolute sample of any output (a pass over the song, or known)."""
        ...

    def blocks(self, names: list[str]) -> Iterator[dict[str, np.ndarray]]:
        """Outputs ``names`` block by block, ``{name: (channels, n)}``, from the start.

        Called once per group of encoders, so each call must read the song afresh. A
        name missing from a block simply has no samples in it (outputs may end at
        different blocks)."""
        ...


@dataclass(frozen=True)
class RenderedOutputs:
    paths: dict[str, Path]
    gain: float


@dataclass(frozen=True)
class Encoding:
    """How every output of one render is encoded (the same for all of them)."""

    spec: EncodingSpec
    tags: dict[str, Tags]
    """Per output name; a name without tags gets none."""
    ffmpeg: str
    sample_rate: int


def gain_for_peak(peak: float) -> float:
    """1.0 when ``peak`` fits in full scale, else the gain that brings it just below."""
    return 1.0 if peak <= 1.0 else _CLIP_TARGET / peak


def log_shared_gain(gain: float, what: str = "outputs") -> None:
    """Say in the log when ``gain`` (below 1) is applied to all outputs so none clips."""
    if gain < 1.0:
        logger.info(
            "%s would clip: applying one gain of %.2f dB to all of them", what, 20 * np.log10(gain)
        )


def output_tags(
    input_tags: dict[str, str],
    fallback_title: str,
    names: list[str],
    options: RenderOptions | None = None,
) -> dict[str, Tags]:
    """ "<original title> (Instrumental)" / "(Vocals)" ..., artist copied when present;
    with a re-render's ``options``, what was done to that output: "<title> (Instrumental,
    −2 keys, guide vocal −12 dB)" but "<title> (Vocals, −2 keys)"
    (``RenderOptions.title_suffix``)."""
    title = input_tags.get("title") or fallback_title
    artist = input_tags.get("artist") or input_tags.get("album_artist")
    options = options or RenderOptions()
    tags: dict[str, Tags] = {}
    for name in names:
        change = options.title_suffix(name)
        detail = f", {change}" if change else ""
        tags[name] = Tags(title=f"{title} ({name.capitalize()}{detail})", artist=artist)
    return tags


def render(
    source: OutputBlocks,
    paths: dict[str, Path],
    encoding: Encoding,
    *,
    gain: float | None = None,
    parallel_encoders: int | None = None,
    what: str = "outputs",
) -> RenderedOutputs:
    """Encode the outputs named in ``paths`` from ``source``, times one shared gain.

    ``gain``: the one a caller decided already (the lossless stems are stored at the gain
    the first render just chose); by default the clip rule on ``source.peak()``, logged
    as ``what``. ``parallel_encoders`` encoders run at a time (default: all), each group
    fed from its own read of ``source``: the pool passes the ffmpeg runs its CPU budget
    grants (``separation.cpu_budget``), one at a time on a 2-core box.

    Raises:
        AudioExportError: an encoder failed; no output, partial or complete, is left.
    """
    if gain is None:
        gain = gain_for_peak(source.peak())
        log_shared_gain(gain, what)
    names = list(paths)
    group_size = max(1, parallel_encoders or len(names))
    written: dict[str, Path] = {}
    try:
        for first in range(0, len(names), group_size):
            group = names[first : first + group_size]
            written |= encode_outputs(
                source.blocks(group),
                {name: paths[name] for name in group},
                encoding,
                gain=gain,
                channels=source.channels,
            )
    except BaseException:
        for path in written.values():  # all or nothing, across groups too
            path.unlink(missing_ok=True)
        raise
    return RenderedOutputs(paths={name: written[name] for name in names}, gain=gain)


def encode_outputs(
    blocks: Iterable[dict[str, np.ndarray]],
    paths: dict[str, Path],
    encoding: Encoding,
    *,
    gain: float,
    channels: int,
) -> dict[str, Path]:
    """Encode ``{name: (channels, n)}`` blocks, times ``gain``, to ``paths[name]``.

    One encoder per output, all running in parallel.

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
                encoding.spec,
                encoding.tags.get(name, Tags()),
                ffmpeg=encoding.ffmpeg,
                sample_rate=encoding.sample_rate,
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
