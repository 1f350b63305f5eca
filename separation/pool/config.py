"""The pool's settings and the model loader it is given, shared by all its parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from separation.audio.decode import AudioLimits
from separation.cache.results import CachePolicy
from separation.cpu_budget import CpuPlan
from separation.model.engine import SeparationOptions
from separation.model.loading import LoadedModel
from separation.model.workers import WorkerPriority

ModelLoader = Callable[[torch.device], LoadedModel]
"""Loads (or returns the already loaded) model for a device, e.g. ``ModelCache.get``."""


@dataclass(frozen=True)
class PoolConfig:
    ffmpeg: str
    tmp_root: Path
    """Job folders (decoded input, accumulators) go below this; removed after each job."""
    cache_dir: Path
    """Finished outputs live here, in the result cache."""
    devices: tuple[torch.device, ...] = (torch.device("cpu"),)
    """One worker per entry; repeat a device for several workers on it."""
    batch_size: int = 1
    """Segments per forward pass (they may come from different songs)."""
    sweep_batch_sizes: tuple[int, ...] = ()
    """When set, each CUDA worker measures these batch sizes at start and uses the one
    ``separation.model.batch_sweep`` recommends instead of ``batch_size``."""
    max_running_jobs: int = 2
    """Songs decoded and separated at the same time; others wait in the queue."""
    max_queued_jobs: int = 100
    max_jobs_per_user: int = 3
    """Queued plus running jobs of one user."""
    max_queued_renders: int = 10
    """Re-renders (karaoke controls pressed) queued or running at once, all users
    together; beyond it one is refused with ``RendersBusyError``."""
    job_timeout_seconds: float = 1800.0
    """From the moment a job leaves the queue; queueing time does not count."""
    limits: AudioLimits = field(default_factory=AudioLimits)
    options: SeparationOptions = field(default_factory=SeparationOptions)
    cache: CachePolicy = field(default_factory=CachePolicy)
    cache_sweep_seconds: float = 600.0
    """How often expired cache entries are removed even when nothing new is stored."""
    min_segment_seconds: float = 1.0
    """The out-of-memory fallback halves the segment length down to this, then fails."""
    progress_interval_seconds: float = 0.5
    keep_stems: bool = True
    """Keep each song's stems losslessly in its cache entry, for re-renders in another
    key or tempo (``SeparationPool.render``)."""
    read_tag_lyrics: bool = True
    """Read the words in each upload's tags (``[lyrics] from_tags``) and keep them with its
    result (``JobResult.tag_lyrics``, ``separation.pool.song_extras``)."""
    keep_cover: bool = True
    """Keep each upload's cover art with its stems, for its karaoke video's background."""
    warm_up: bool = True
    """Run one forward pass per worker at start (measures speed for queue estimates)."""
    worker_priority: WorkerPriority = WorkerPriority.NORMAL
    """How the workers' threads are scheduled against the event loop and other processes
    (``separation.model.workers``)."""
    overlap_accumulation: bool | None = None
    """Accumulate a batch's outputs on a second thread during the next forward pass
    (``separation.model.workers``); None: on CUDA devices."""
    cpu: CpuPlan | None = None
    """How the CPU cores are shared between the model step and ffmpeg
    (``separation.cpu_budget``); None: this machine's cores and torch's thread count."""
