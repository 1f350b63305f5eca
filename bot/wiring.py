"""Turning settings into the plain objects ``separation/`` and ``storage/`` take.

The engine and the store do not know about the settings file; this is the one place
that translates, so a renamed setting changes one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from separation.cache import CachePolicy
from separation.decode import AudioLimits
from separation.encode import EncodingSpec
from separation.engine import Segment, SeparationOptions, run_batch
from separation.ffmpeg import find_ffmpeg
from separation.models import LoadedModel, ModelCache, resolve_device
from separation.pool import PoolConfig, SeparationPool
from storage.records import QuotaLimits

from .flow import FlowConfig
from .metrics import Metrics
from .settings import Platform, Settings


def audio_limits(settings: Settings) -> AudioLimits:
    return AudioLimits(
        max_duration_seconds=settings.audio.max_duration_seconds,
        max_input_bytes=settings.audio.max_input_bytes,
        ffmpeg_memory_bytes=settings.audio.ffmpeg_memory_mb * 2**20,
        probe_timeout_seconds=settings.audio.probe_timeout_seconds,
    )


def ingest_parallelism(settings: Settings) -> tuple[int, int]:
    """(downloads, header checks) at once across all users: the settings, or from the
    core count (downloads wait on the network, header checks on a core)."""
    cores = os.cpu_count() or 2
    downloads = settings.audio.max_parallel_downloads or max(8, 4 * cores)
    probes = settings.audio.max_parallel_probes or max(2, cores)
    return downloads, probes


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


def pool_config(settings: Settings, *, batch_size: int | None = None) -> PoolConfig:
    """The worker pool's configuration (``batch_size`` overrides the settings, e.g. a flag)."""
    specs = settings.pool.devices or [settings.model.device]
    devices = tuple(resolve_device(spec) for spec in specs)
    batch = batch_size or settings.pool.batch_size or default_batch_size(devices[0])
    pool = settings.pool
    return PoolConfig(
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        tmp_root=settings.tmp_dir,
        cache_dir=pool.cache_dir or settings.general.data_dir / "cache",
        devices=devices,
        batch_size=batch,
        max_running_jobs=pool.max_running_jobs or max(2, batch * len(devices)),
        max_queued_jobs=pool.max_queued_jobs,
        max_jobs_per_user=pool.max_jobs_per_user,
        job_timeout_seconds=pool.job_timeout_seconds,
        limits=audio_limits(settings),
        options=separation_options(settings),
        cache=CachePolicy(
            max_bytes=pool.cache_max_bytes,
            max_age_seconds=pool.cache_max_age_hours * 3600,
            min_age_seconds=pool.cache_min_age_minutes * 60,
        ),
    )


def build_pool(
    settings: Settings, config: PoolConfig | None = None, *, metrics: Metrics | None = None
) -> SeparationPool:
    """A pool loading the configured model once per device (call ``configure_torch`` first).

    With ``metrics``, every forward pass's batch size is recorded (from the worker thread;
    prometheus-client is thread-safe).
    """
    models = ModelCache(allow_download=settings.model.allow_download)

    def load(device: torch.device) -> LoadedModel:
        return models.get(settings.model.name, repo=settings.model.repo, device=device)

    if metrics is None:
        return SeparationPool(config or pool_config(settings), load)

    def counted_batch(model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        metrics.batch_ran(len(segments))
        return run_batch(model, segments)

    return SeparationPool(config or pool_config(settings), load, runner=counted_batch)


def quota_limits(settings: Settings, platform: Platform) -> QuotaLimits:
    """The platform's default limits from the settings, as the value ``storage`` takes."""
    return settings.quota.for_platform(platform).as_limits()


def flow_config(settings: Settings) -> FlowConfig:
    """The chat flow's view of the settings."""
    downloads, probes = ingest_parallelism(settings)
    return FlowConfig(
        model_name=settings.model.name,
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        limits=audio_limits(settings),
        quota_limits=lambda platform: quota_limits(settings, platform),
        encoding=encoding_spec(settings),
        min_mp3_bitrate=settings.output.min_mp3_bitrate,
        options={"shifts": settings.model.shifts, "overlap": settings.model.overlap},
        retention_hours=settings.storage.results_ttl_hours,
        max_parallel_downloads=downloads,
        max_parallel_probes=probes,
    )
