"""Turning settings into the plain objects ``separation/`` and ``storage/`` take.

The engine and the store do not know about the settings file; this is the one place
that translates, so a renamed setting changes one line.
"""

from __future__ import annotations

import torch

from separation.decode import AudioLimits
from separation.encode import EncodingSpec
from separation.engine import SeparationOptions
from separation.ffmpeg import find_ffmpeg
from separation.models import resolve_device
from separation.pipeline import PipelineConfig

from .settings import Settings


def audio_limits(settings: Settings) -> AudioLimits:
    return AudioLimits(
        max_duration_seconds=settings.audio.max_duration_seconds,
        max_input_bytes=settings.audio.max_input_bytes,
    )


def separation_options(settings: Settings) -> SeparationOptions:
    return SeparationOptions(shifts=settings.model.shifts, overlap=settings.model.overlap)


def encoding_spec(settings: Settings) -> EncodingSpec:
    return EncodingSpec(format=settings.output.format, bitrate_kbps=settings.output.mp3_bitrate)


def configure_torch(settings: Settings) -> torch.device:
    """Apply the CPU thread setting and resolve the configured device."""
    if settings.model.cpu_threads:
        torch.set_num_threads(settings.model.cpu_threads)
    return resolve_device(settings.model.device)


def default_batch_size(device: torch.device) -> int:
    """Segments per forward pass: several on a GPU; on CPU one is as fast as any batch."""
    return 4 if device.type == "cuda" else 1


def pipeline_config(settings: Settings, *, batch_size: int) -> PipelineConfig:
    return PipelineConfig(
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        tmp_root=settings.tmp_dir,
        limits=audio_limits(settings),
        options=separation_options(settings),
        encoding=encoding_spec(settings),
        mode=settings.output.stems,
        batch_size=batch_size,
    )
