"""Karaoke controls: the same song again in another key, at another tempo, with a guide vocal.

Separation costs minutes of the model; a key or tempo change does not need the model at
all. So the outputs of a separation are kept as lossless stems (:func:`write_lossless_stems`)
and every later request is a re-mix of those stems by ffmpeg alone (:func:`render_controls`):
librubberband for pitch and tempo, ``volume`` + ``amix`` for the guide vocal. That takes
seconds per output.

Three choices shape this module:

- The guide vocal is mixed into the instrumental *before* rubberband, so voice and
  accompaniment go through one time-stretch and one pitch-shift together: they stay in
  tune and in time with each other, which two separately stretched signals summed
  afterwards would only approximately be (rubberband's phase vocoder is not linear in its
  input's timing, and its transient handling reacts to the whole mix).
- The stems are stored *before* the clip gain of ``separation.rendering.outputs``. That gain
  depends on the peak of the outputs, and a key change, a tempo change or an added guide vocal
  moves the peak; a render must therefore start from the model's own levels and apply the
  clip rule to what it actually produces. 24-bit FLAC cannot hold values beyond ±1.0, so
  when the model's outputs go past full scale all stems are stored at one shared
  ``scale``, which a render divides out again before its own clip rule.
- ffmpeg writes raw float32 to a pipe and Python keeps the peak while copying it to a
  temporary file, block by block (``separation.rendering.raw``): the clip gain must be
  known before the first sample is encoded, and a whole song is never held in memory.
  The files then take the one path of every render, the first one included: one shared
  gain, one encoder per output (``separation.rendering.outputs``).
- A render can pause between pieces (``pause_point``, issue 20): a re-render is an extra,
  and a song someone waits for must not wait behind a long rubberband pass. Between
  pieces of ``raw.PAUSE_FRAMES`` read from the renderer and between as many fed to the
  encoders, the caller's pause point may block; ffmpeg then fills its pipe and sleeps
  until we read or write again, using no CPU (``separation.cpu_budget``).

Inputs here are our own FLAC files, never uploads, so ffmpeg runs without
``separation.audio.sandbox``; it still runs from an argument list built with ffmpeg-python
(``separation.audio.ffmpeg_args``), never through a shell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from separation.audio.encode import EncodingSpec, StemMode, Tags
from separation.audio.ffmpeg_args import Stream, command_line, file_url, input_stream
from separation.audio.render_options import RenderOptions
from separation.jobs import INSTRUMENTAL
from separation.model.loading import VOCALS
from separation.model.stems import SeparatedStems
from separation.rendering.outputs import Encoding, RenderedOutputs, render
from separation.rendering.raw import PAUSE_FRAMES as PAUSE_FRAMES
from separation.rendering.raw import RawOutputs
from separation.rendering.render import MixedStems, clip_gain, output_names

logger = logging.getLogger(__name__)

STEM_SUFFIX = ".stem.flac"
# 24-bit FLAC (what EncodingSpec("flac") writes): lossless for our purposes, half of float.
_STEM_SPEC = EncodingSpec(format="flac")


@dataclass(frozen=True)
class LosslessStems:
    """The outputs of a separation as 24-bit FLAC, ready for any number of renders."""

    paths: dict[str, Path]
    scale: float
    """The gain the samples were stored at: 1.0, or one shared gain below 1.0 when the
    model's outputs went past full scale. A render multiplies by ``1 / scale``."""


def write_lossless_stems(
    separated: SeparatedStems,
    folder: Path,
    *,
    stems: StemMode,
    ffmpeg: str,
    sample_rate: int,
    parallel_encoders: int | None = None,
    scale: float | None = None,
) -> LosslessStems:
    """Store the outputs of ``stems`` mode as ``<name>.stem.flac`` in ``folder``
    (``parallel_encoders`` at a time, default all: ``outputs.render``).

    ``scale``: ``render.clip_gain(separated, stems)`` when the caller has it already (the
    pipeline rendered the same outputs a moment ago), saving a second pass over the song.

    The samples are the model's levels (before any clip gain: see the module docstring),
    times one shared ``scale`` only when they would not fit in 24-bit FLAC.

    Raises:
        AudioExportError: an encoder failed; no partial file is left behind.
    """
    # clip_gain is exactly the shared gain that keeps every output within full scale.
    if scale is None:
        scale = clip_gain(separated, stems)
    paths = {
        name: folder / f"{name}{STEM_SUFFIX}" for name in output_names(separated.sources, stems)
    }
    written = render(
        MixedStems(separated, stems),
        paths,
        Encoding(spec=_STEM_SPEC, tags={}, ffmpeg=ffmpeg, sample_rate=sample_rate),
        gain=scale,
        parallel_encoders=parallel_encoders,
    )
    return LosslessStems(paths=written.paths, scale=scale)


def render_controls(
    stem_paths: dict[str, Path],
    scale: float,
    outputs: dict[str, Path],
    *,
    options: RenderOptions,
    spec: EncodingSpec,
    tags: dict[str, Tags],
    ffmpeg: str,
    sample_rate: int,
    channels: int = 2,
    workdir: Path | None = None,
    pause_point: Callable[[], None] | None = None,
) -> RenderedOutputs:
    """Render each of ``outputs`` from the lossless stems with ``options`` applied.

    The instrumental gets the key and tempo change and, when ``options.guide_db`` is set,
    the vocals mixed in at exactly that level (relative to the model's levels) before the
    change. It is read from the ``instrumental`` stem, or summed from every non-vocal
    stem when the stems were stored in four-stem mode. Every other output (the vocals,
    usually) is its own stem with the same key and tempo change and no guide: a singer
    can practise with the vocals in the key and at the tempo they will sing to.

    The reshaped samples then take the one path of every render
    (``separation.rendering.outputs``): one shared gain, applied to all outputs only when
    one of them would exceed full scale (after ``scale`` is divided out); it is returned.

    Args:
        stem_paths: :attr:`LosslessStems.paths`.
        scale: :attr:`LosslessStems.scale`.
        outputs: the file to write per output name (``instrumental``, ``vocals``...).
        workdir: where the temporary float32 files go (a private folder is made inside);
            by default next to the first output, which is on the disk meant for songs.
        pause_point: called between pieces of work, from this thread; it may block to
            let more urgent work use the CPU (``CpuBudget.preemptible``).

    Raises:
        AudioExportError: ffmpeg failed (a missing or damaged stem, a full disk); no
            output file, partial or complete, is left behind.
        ValueError: no outputs, or an output has no stem to be rendered from.
    """
    if not outputs:
        raise ValueError("no outputs to render")
    inputs = {name: _mix_inputs(name, stem_paths, options) for name in outputs}
    commands = {
        name: _render_command(ffmpeg, mix, options, sample_rate=sample_rate, channels=channels)
        for name, mix in inputs.items()
    }
    near = workdir if workdir is not None else next(iter(outputs.values())).parent
    with RawOutputs.scratch(near, channels=channels, pause=pause_point or _never_pause) as raw:
        # One ffmpeg at a time: the pool already runs songs in parallel.
        for name, command in commands.items():
            raw.run(name, command, unscale=1 / scale, output=outputs[name])
        encoding = Encoding(spec=spec, tags=tags, ffmpeg=ffmpeg, sample_rate=sample_rate)
        return render(raw, outputs, encoding, what="rendered outputs")


def _mix_inputs(
    name: str, stem_paths: dict[str, Path], options: RenderOptions
) -> list[tuple[Path, float | None]]:
    """The stems summed into output ``name``, each with its level in dB (None: as is)."""
    if name != INSTRUMENTAL or INSTRUMENTAL in stem_paths:
        sources = [name]
    else:  # stored in four-stem mode: the instrumental is every other source
        sources = [source for source in stem_paths if source != VOCALS]
    guide = name == INSTRUMENTAL and options.guide_db is not None
    needed = [*sources, VOCALS] if guide else sources
    if not sources or any(stem not in stem_paths for stem in needed):
        raise ValueError(f"no stems to render {name!r} from: have {sorted(stem_paths)}")
    inputs: list[tuple[Path, float | None]] = [(stem_paths[source], None) for source in sources]
    if guide:
        inputs.append((stem_paths[VOCALS], options.guide_db))
    return inputs


def _render_command(
    ffmpeg: str,
    inputs: list[tuple[Path, float | None]],
    options: RenderOptions,
    *,
    sample_rate: int,
    channels: int,
) -> list[str]:
    """ffmpeg reading the stems, mixing and reshaping them, writing float32 to stdout."""
    streams: list[Stream] = []
    for path, level_db in inputs:
        stream = input_stream(file_url(path), threads="1")["a"]
        if level_db is not None:
            stream = stream.filter("volume", f"{level_db:g}dB")
        streams.append(stream)
    # normalize=0: amix would otherwise divide by the number of inputs; the sum must keep
    # the instrumental as it is and the guide at exactly its level.
    mixed = (
        streams[0]
        if len(streams) == 1
        else ffmpeg_python.filter(streams, "amix", inputs=str(len(streams)), normalize="0")
    )
    if options.reshapes:
        # transients=mixed: with the default (crisp) phase resets, a sustained tone an
        # octave down or at 0.8x tempo warbles (its level dips ~10 %, a fifth of its energy
        # leaves the note); mixed resets phases only above the range of fundamentals, so
        # notes stay pure and drum attacks stay sharp (tests/separation/test_controls.py).
        mixed = mixed.filter(
            "rubberband",
            pitch=f"{options.pitch_ratio:.10g}",
            tempo=f"{options.tempo:g}",
            pitchq="quality",
            transients="mixed",
        )
    output = mixed.output("pipe:1", f="f32le", ac=str(channels), ar=str(sample_rate), threads="1")
    # -xerror: a damaged stem must fail the render, not come out with a gap in it.
    return command_line(ffmpeg, output, "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror")


def _never_pause() -> None:
    """The pause point of a render nothing can preempt."""
