"""One song from input file to output files: decode, separate, render.

The steps are separate functions so the worker pool can run decoding and rendering in
threads while it batches the model step across jobs; :func:`separate_file` chains them
for a single song (the CLI's fallback path and the tests' reference).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from separation.decode import (
    AudioLimits,
    DecodedAudio,
    check_input_file,
    decode_audio,
    inspect_audio,
)
from separation.encode import EncodingSpec, StemMode, Tags
from separation.engine import ProgressCallback, SeparationJob, SeparationOptions, run_job
from separation.ffmpeg import ProbeResult
from separation.models import LoadedModel
from separation.render import output_names, render_outputs
from separation.workdir import job_directory

OutputPathFor = Callable[[str], Path]
"""Maps an output name ("instrumental", "vocals", "drums", ...) to the file to write."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything about how a song is processed, except the model itself."""

    ffmpeg: str
    tmp_root: Path
    limits: AudioLimits = field(default_factory=AudioLimits)
    options: SeparationOptions = field(default_factory=SeparationOptions)
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    stems: StemMode = "two"
    batch_size: int = 1


@dataclass(frozen=True)
class SeparationResult:
    outputs: dict[str, Path]
    """Output name -> file, instrumental (or the first stem) first."""
    duration_seconds: float
    gain: float
    input_tags: dict[str, str]


def output_tags(
    input_tags: dict[str, str], fallback_title: str, names: list[str]
) -> dict[str, Tags]:
    """ "<original title> (Instrumental)" / "(Vocals)" ..., artist copied when present."""
    title = input_tags.get("title") or fallback_title
    artist = input_tags.get("artist") or input_tags.get("album_artist")
    return {name: Tags(title=f"{title} ({name.capitalize()})", artist=artist) for name in names}


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


def separate_file(
    input_path: Path,
    output_path_for: OutputPathFor,
    *,
    model: LoadedModel,
    config: PipelineConfig,
    fallback_title: str | None = None,
    progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> SeparationResult:
    """Separate one file end to end on the calling thread.

    Temporary data (decoded input, accumulators) lives in a private job folder below
    ``config.tmp_root`` that is removed on every exit path.
    """
    with job_directory(config.tmp_root) as workdir:
        audio = decode_input(input_path, workdir, config=config, sample_rate=model.samplerate)
        job = SeparationJob(model, audio, workdir, config.options, rng=rng, progress=progress)
        stems = run_job(job, batch_size=config.batch_size)
        names = output_names(model.sources, config.stems)
        rendered = render_outputs(
            stems,
            {name: output_path_for(name) for name in names},
            stems=config.stems,
            spec=config.encoding,
            ffmpeg=config.ffmpeg,
            sample_rate=model.samplerate,
            tags=output_tags(audio.tags, fallback_title or input_path.stem, names),
        )
        return SeparationResult(
            outputs=rendered.paths,
            duration_seconds=audio.duration_seconds,
            gain=rendered.gain,
            input_tags=audio.tags,
        )
