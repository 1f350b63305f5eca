"""Turning settings into the separation backend: the device, the model and the pool.

Kept apart from ``bot.process.wiring`` because everything here imports torch; the CLI imports
this module only when it is about to separate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import torch

from bot.ops.metrics import Metrics
from bot.process.wiring import audio_limits
from bot.settings import Settings
from separation.audio.ffmpeg import find_ffmpeg
from separation.cache.results import CachePolicy
from separation.model.allocator import keep_memory_mapped
from separation.model.batch_sweep import DEFAULT_SWEEP_SIZES
from separation.model.engine import Segment, SeparationOptions, run_batch
from separation.model.loading import LoadedModel, ModelCache, resolve_device
from separation.model.precision import resolve_precision
from separation.pool import PoolConfig, SeparationPool

logger = logging.getLogger(__name__)


def separation_options(settings: Settings) -> SeparationOptions:
    return SeparationOptions(shifts=settings.model.shifts, overlap=settings.model.overlap)


def configure_torch(settings: Settings) -> torch.device:
    """Apply the CPU thread setting and resolve the configured device.

    Called before the pool starts any thread: it also sets up malloc so that forward
    passes reuse their memory instead of faulting it in again (``separation.model.allocator``).
    """
    if keep_memory_mapped():
        logger.debug("malloc: one arena, no trimming, heap allocations up to 1 GiB")
    if settings.model.cpu_threads:
        torch.set_num_threads(settings.model.cpu_threads)
    return resolve_device(settings.model.device)


def default_batch_size(device: torch.device) -> int:
    """Segments per forward pass until a sweep says better: several on a GPU; on CPU one
    is as fast as any batch."""
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
        # No batch size configured: each GPU worker measures and picks its own at start.
        sweep_batch_sizes=() if batch_size or pool.batch_size else DEFAULT_SWEEP_SIZES,
        max_running_jobs=pool.max_running_jobs or max(2, batch * len(devices)),
        max_queued_jobs=pool.max_queued_jobs,
        max_jobs_per_user=pool.max_jobs_per_user,
        max_queued_renders=pool.max_queued_renders,
        job_timeout_seconds=pool.job_timeout_seconds,
        limits=audio_limits(settings),
        options=separation_options(settings),
        read_tag_lyrics=settings.lyrics.from_tags,
        cache=CachePolicy(
            max_bytes=pool.cache_max_bytes,
            max_age_seconds=pool.cache_max_age_hours * 3600,
            min_age_seconds=pool.cache_min_age_minutes * 60,
        ),
    )


def worker_pool_config(settings: Settings) -> PoolConfig:
    """The pool of a distributed worker: it runs every song it took from the queue at once
    (``queue.worker_concurrency``); the queue decides admission fleet-wide."""
    concurrency = settings.queue.worker_concurrency
    return dataclasses.replace(
        pool_config(settings),
        max_running_jobs=concurrency,
        max_queued_jobs=concurrency,
        max_jobs_per_user=concurrency,
    )


def build_pool(
    settings: Settings, config: PoolConfig | None = None, *, metrics: Metrics | None = None
) -> SeparationPool:
    """A pool loading the configured model once per device (call ``configure_torch`` first).

    With ``metrics``, every forward pass's batch size is recorded (from the worker thread;
    prometheus-client is thread-safe), and the result cache's disk use is exported.
    """
    # Never a download here: ``run`` and ``separate`` fetch missing weights first
    # (``ensure_weights``: one progress bar, before anything is created).
    models = ModelCache()

    def load(device: torch.device) -> LoadedModel:
        model = models.get(settings.model.name, repo=settings.model.repo, device=device)
        precision = resolve_precision(settings.model.precision, device)
        logger.info("model %s on %s: forward pass in %s", model.name, device, precision)
        return dataclasses.replace(model, precision=precision)

    config = config or pool_config(settings)
    if metrics is None:
        return SeparationPool(config, load)

    def counted_batch(model: LoadedModel, segments: Sequence[Segment]) -> list[torch.Tensor]:
        metrics.batch_ran(len(segments))
        return run_batch(model, segments)

    pool = SeparationPool(config, load, runner=counted_batch)

    def cache_bytes() -> float:
        usage = pool.cache_usage()
        return math.nan if usage is None else float(usage.used_bytes)

    metrics.watch_cache(cache_bytes, config.cache.max_bytes)
    return pool
