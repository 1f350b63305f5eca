"""One song from input file to output files: decode, separate, render.

This is the only place the chain is written. :func:`separate_song` runs it with the
model step and the output folder handed in, so the worker pool (``separation.pool``)
batches the model step across songs and renders into its cache, while
:func:`separate_file` runs the model on the song alone (benchmarks, tests' reference).
The blocking steps (decoding, encoding, file I/O) run off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from separation.audio.decode import (
    AudioLimits,
    DecodedAudio,
    check_input_file,
    decode_audio,
    inspect_audio,
)
from separation.audio.encode import EncodingSpec, StemMode
from separation.audio.ffmpeg import ProbeResult
from separation.cpu_budget import CpuBudget
from separation.model.engine import ProgressCallback, SeparationJob, SeparationOptions, run_job
from separation.model.loading import LoadedModel
from separation.model.offload import run_blocking
from separation.model.stems import SeparatedStems
from separation.rendering.controls import LosslessStems, write_lossless_stems
from separation.rendering.outputs import RenderedOutputs, output_tags
from separation.rendering.render import output_names, render_outputs
from separation.workdir import JobFolder

logger = logging.getLogger(__name__)

SeparateStep = Callable[[DecodedAudio, Path], Awaitable[SeparatedStems]]
"""The model step: the decoded song and its private job folder in, the stems out."""

OutputFolder = Callable[[], Awaitable[Path]]
"""Where the outputs go; asked for once the model step is done."""

DecodedHook = Callable[[DecodedAudio], EncodingSpec]
"""Told the decoded song before the model runs; returns the encoding to render with."""


class PhaseClock:
    """Seconds each step of a song took, for the log: where a one-shot run's time goes."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in self.seconds.items())


@dataclass(frozen=True)
class PipelineConfig:
    """Everything about how a song is processed, except the model and the song itself."""

    ffmpeg: str
    tmp_root: Path
    """Job folders (decoded input, accumulators) go below this; removed after each song."""
    limits: AudioLimits = field(default_factory=AudioLimits)
    options: SeparationOptions = field(default_factory=SeparationOptions)
    keep_stems: bool = False
    """Also write the stems losslessly beside the outputs (``separation.rendering.controls``), so
    the song can be re-rendered in another key or tempo without the model."""


@dataclass(frozen=True)
class Song:
    """One input and what to make of it."""

    input_path: Path
    stems: StemMode = "two"
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    fallback_title: str | None = None
    """Title for the output tags when the input has none (default: the input's stem)."""
    probe: ProbeResult | None = None
    """The header a caller already read: the file is not probed a second time."""

    @property
    def title(self) -> str:
        return self.fallback_title or self.input_path.stem


@dataclass(frozen=True)
class SeparationResult:
    outputs: dict[str, Path]
    """Output name -> file, instrumental (or the first stem) first."""
    duration_seconds: float
    gain: float
    input_tags: dict[str, str]
    encoding: EncodingSpec
    """The encoding the outputs were rendered with."""
    stems: LosslessStems | None = None
    """The lossless stems, with ``PipelineConfig.keep_stems``."""


def decode_input(
    path: Path,
    workdir: Path,
    *,
    config: PipelineConfig,
    sample_rate: int,
    info: ProbeResult | None = None,
) -> DecodedAudio:
    """Check and decode ``path`` into ``workdir`` (raises AudioInputError subclasses).

    With ``info`` (the header a caller already read) the file is not probed again.
    """
    if info is None:
        info = inspect_audio(path, ffmpeg=config.ffmpeg, limits=config.limits)
    else:
        check_input_file(path, config.limits)
    return decode_audio(
        path,
        workdir / "input.f32",
        ffmpeg=config.ffmpeg,
        sample_rate=sample_rate,
        limits=config.limits,
        info=info,
    )


async def separate_song(
    song: Song,
    *,
    model: LoadedModel,
    config: PipelineConfig,
    separate: SeparateStep,
    output_folder: OutputFolder,
    on_decoded: DecodedHook | None = None,
    cpu: CpuBudget | None = None,
) -> SeparationResult:
    """Decode ``song``, run ``separate`` on it, render the outputs into ``output_folder()``.

    Output files are named ``<name>.<extension>`` ("instrumental.mp3", ...). Temporary
    data lives in a private job folder below ``config.tmp_root`` that is removed on every
    exit path (after any thread still writing into it has finished). With ``cpu`` (the
    pool's budget) every ffmpeg run holds one of its audio slots while it runs.
    """
    folder = await run_blocking(None, JobFolder.create, config.tmp_root)
    phases = PhaseClock()
    try:
        async with _audio_slots(cpu, 1):
            audio = await run_blocking(
                None,
                decode_input,
                song.input_path,
                folder.path,
                config=config,
                sample_rate=model.samplerate,
                info=song.probe,
            )
        phases.lap("decode")
        spec = song.encoding if on_decoded is None else on_decoded(audio)
        stems = await separate(audio, folder.path)
        phases.lap("model")
        into = await output_folder()
        rendered = await _render(stems, into, song, audio, spec, model, config, cpu)
        phases.lap("encode")
        kept = None
        if config.keep_stems:
            kept = await _keep_stems(stems, into, song.stems, rendered, model, config, cpu)
            phases.lap("stems")
        logger.info("%s (%.0f s of audio): %s", song.title, audio.duration_seconds, phases)
        return SeparationResult(
            outputs=rendered.paths,
            duration_seconds=audio.duration_seconds,
            gain=rendered.gain,
            input_tags=audio.tags,
            encoding=spec,
            stems=kept,
        )
    finally:
        await run_blocking(None, folder.remove)


async def _render(
    stems: SeparatedStems,
    into: Path,
    song: Song,
    audio: DecodedAudio,
    spec: EncodingSpec,
    model: LoadedModel,
    config: PipelineConfig,
    cpu: CpuBudget | None,
) -> RenderedOutputs:
    """The outputs users receive, ``<name>.<extension>`` in ``into``; every encoder holds
    an audio slot of ``cpu``."""
    names = output_names(model.sources, song.stems)
    async with _audio_slots(cpu, len(names)) as encoders:
        return await run_blocking(
            None,
            render_outputs,
            stems,
            {name: into / f"{name}.{spec.extension}" for name in names},
            stems=song.stems,
            spec=spec,
            tags=output_tags(audio.tags, song.title, names),
            ffmpeg=config.ffmpeg,
            sample_rate=model.samplerate,
            parallel_encoders=encoders,
        )


async def _keep_stems(
    stems: SeparatedStems,
    into: Path,
    mode: StemMode,
    rendered: RenderedOutputs,
    model: LoadedModel,
    config: PipelineConfig,
    cpu: CpuBudget | None,
) -> LosslessStems:
    """The same outputs as lossless stems beside them, for re-renders; every encoder
    holds an audio slot of ``cpu``."""
    async with _audio_slots(cpu, len(rendered.paths)) as encoders:
        return await run_blocking(
            None,
            write_lossless_stems,
            stems,
            into,
            stems=mode,
            ffmpeg=config.ffmpeg,
            sample_rate=model.samplerate,
            parallel_encoders=encoders,
            scale=rendered.gain,  # the same peak scan render_outputs just made
        )


@contextlib.asynccontextmanager
async def _audio_slots(cpu: CpuBudget | None, processes: int) -> AsyncIterator[int]:
    """``cpu.audio(processes)``, or all ``processes`` at once without a budget."""
    if cpu is None:
        yield processes
        return
    async with cpu.audio(processes) as granted:
        yield granted


async def separate_file(
    song: Song,
    output_folder: Path,
    *,
    model: LoadedModel,
    config: PipelineConfig,
    batch_size: int = 1,
    progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> SeparationResult:
    """Separate one song on its own (no pool): the model runs in a thread, one segment
    batch of ``batch_size`` after another."""

    async def alone(audio: DecodedAudio, workdir: Path) -> SeparatedStems:
        job = SeparationJob(model, audio, workdir, config.options, rng=rng, progress=progress)
        return await run_blocking(None, run_job, job, batch_size=batch_size)

    async def into() -> Path:
        return output_folder

    return await separate_song(song, model=model, config=config, separate=alone, output_folder=into)
