"""The bot's Prometheus metrics, in a registry each :class:`Metrics` object owns.

prometheus_client's default registry is a process-wide global: two bots in one test
process would share counters, and a metric registered twice raises. So the application
creates one ``Metrics`` and hands it to the job pool, the chat flow and the health
server; tests create their own. Callers never touch prometheus types: they call the
small methods below, which keep label names and units in one place.

Labels are small fixed vocabularies chosen by our code (platform, job status, refusal
reason, error kind), never user input, so the number of time series stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Seconds a job waits in the queue: instant on an idle bot, minutes behind a long queue.
_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
# Seconds of separation for one song: ~5 s on a GPU, minutes on a CPU.
_PROCESSING_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800)
# Processing time / song length: ~0.02 on a GPU, ~0.3-1.5 on a CPU.
_REALTIME_FACTOR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

if TYPE_CHECKING:
    import torch

GpuMemoryReader = Callable[[], float]
"""Bytes of GPU memory in one category, read when Prometheus scrapes."""


_QUEUE_STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


def _add_gpu_metrics(registry: CollectorRegistry, gpu_memory: dict[str, GpuMemoryReader]) -> None:
    """GPU memory by kind, each read at scrape time."""
    gpu = Gauge(
        "karaoke_gpu_memory_bytes",
        "GPU memory held by this process (torch's allocator), by kind.",
        ["kind"],
        registry=registry,
    )
    for kind, reader in gpu_memory.items():
        gpu.labels(kind=kind).set_function(reader)


class Metrics:
    """Every metric the bot exports, registered in :attr:`registry`."""

    content_type = CONTENT_TYPE_LATEST
    """The Content-Type of :meth:`render`'s output."""

    def __init__(self, *, gpu_memory: dict[str, GpuMemoryReader] | None = None) -> None:
        """Create the metrics.

        Args:
            gpu_memory: readers by kind (e.g. ``allocated``, ``reserved``), called at scrape
                time; see :func:`cuda_memory_readers`. None on a CPU-only bot, which then
                exports no GPU series at all rather than a misleading 0.
        """
        self.registry = CollectorRegistry(auto_describe=True)
        self._add_song_metrics(self.registry)
        self._add_service_metrics(self.registry)
        self._add_fleet_metrics(self.registry)
        if gpu_memory:
            _add_gpu_metrics(self.registry, gpu_memory)

    def _add_song_metrics(self, registry: CollectorRegistry) -> None:
        """Songs through the separator: outcomes, waits, times, audio, batches."""
        self._jobs = Counter(
            "karaoke_jobs",
            "Jobs finished, by platform and final status.",
            ["platform", "status"],
            registry=registry,
        )
        self._queue_length = Gauge(
            "karaoke_queue_length", "Jobs waiting for the separator.", registry=registry
        )
        self._wait = Histogram(
            "karaoke_job_wait_seconds",
            "Time from submission to the start of separation.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self._processing = Histogram(
            "karaoke_job_processing_seconds",
            "Time spent decoding, separating and encoding one song.",
            buckets=_PROCESSING_BUCKETS,
            registry=registry,
        )
        self._audio = Counter(
            "karaoke_audio_processed_seconds",
            "Seconds of audio separated.",
            registry=registry,
        )
        self._realtime_factor = Histogram(
            "karaoke_realtime_factor",
            "Processing time divided by song length (below 1 is faster than real time).",
            buckets=_REALTIME_FACTOR_BUCKETS,
            registry=registry,
        )
        self._batch_size = Histogram(
            "karaoke_batch_size",
            "Segments per forward pass of the model.",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )

    def _add_service_metrics(self, registry: CollectorRegistry) -> None:
        """How the bot serves users: cache, refusals, errors, event-loop lag."""
        self._cache_hits = Counter(
            "karaoke_cache_hits", "Songs served from the result cache.", registry=registry
        )
        self._cache_misses = Counter(
            "karaoke_cache_misses", "Songs that had to be separated.", registry=registry
        )
        self._quota_refusals = Counter(
            "karaoke_quota_refusals",
            "Requests refused by a quota or the rate limiter, by reason.",
            ["reason"],
            registry=registry,
        )
        self._errors = Counter("karaoke_errors", "Failures, by kind.", ["kind"], registry=registry)
        self._loop_lag = Gauge(
            "karaoke_event_loop_lag_seconds",
            "Worst recent delay of the event loop (a blocked loop delays every user).",
            registry=registry,
        )

    def _add_fleet_metrics(self, registry: CollectorRegistry) -> None:
        """The distributed queue and its workers (zero on a single-host bot)."""
        self._queue_jobs = Gauge(
            "karaoke_queue_jobs",
            "Jobs in the distributed queue, by state (todo, doing, failed...).",
            ["state"],
            registry=registry,
        )
        self._workers_alive = Gauge(
            "karaoke_workers_alive",
            "Distributed workers with a recent heartbeat.",
            registry=registry,
        )
        self._retries = Counter(
            "karaoke_queue_retries",
            "Songs started again because their worker died or was cut off.",
            registry=registry,
        )

    def job_finished(
        self,
        platform: str,
        status: str,
        *,
        wait_s: float | None = None,
        processing_s: float | None = None,
        audio_s: float | None = None,
    ) -> None:
        """Record one job at its end (done, failed, cancelled, refused...).

        Times that do not apply (a job cancelled while queued never processed) are None.
        Audio and the real-time factor count only when separation actually ran.
        """
        self._jobs.labels(platform=platform, status=status).inc()
        if wait_s is not None:
            self._wait.observe(max(wait_s, 0.0))
        if processing_s is not None:
            self._processing.observe(max(processing_s, 0.0))
        if processing_s is not None and audio_s:
            self._audio.inc(max(audio_s, 0.0))
            self._realtime_factor.observe(max(processing_s, 0.0) / audio_s)

    def set_queue_length(self, length: int) -> None:
        """Jobs waiting now; the pool calls this whenever its queue changes."""
        self._queue_length.set(length)

    def set_queue_jobs(self, by_state: dict[str, int]) -> None:
        """The distributed queue's jobs by state (states absent from ``by_state``: 0)."""
        for state in {*by_state, *_QUEUE_STATES}:
            self._queue_jobs.labels(state=state).set(by_state.get(state, 0))

    def set_workers_alive(self, count: int) -> None:
        self._workers_alive.set(count)

    def retried(self) -> None:
        """A song's attempt after the first was seen (its worker died or was cut off)."""
        self._retries.inc()

    def batch_ran(self, size: int) -> None:
        """One forward pass of ``size`` segments (shows whether batching pays off)."""
        self._batch_size.observe(size)

    def cache(self, hit: bool) -> None:
        """A song was looked up in the result cache."""
        (self._cache_hits if hit else self._cache_misses).inc()

    def quota_refused(self, reason: str) -> None:
        """A request was refused, e.g. ``songs_per_day``, ``song_too_long``, ``rate_limit``."""
        self._quota_refusals.labels(reason=reason).inc()

    def error(self, kind: str) -> None:
        """A failure worth counting, e.g. ``bad_audio``, ``ffmpeg``, ``upload``, ``internal``."""
        self._errors.labels(kind=kind).inc()

    def watch_cache(self, used_bytes: Callable[[], float], limit_bytes: int) -> None:
        """Export the result cache's disk use (read at scrape time; ``used_bytes`` must be
        cheap: the last measurement, not a walk of the folder) and its limit. Called once,
        by a bot that keeps a local cache; others export no cache series at all."""
        used = Gauge(
            "karaoke_cache_bytes",
            "What the result cache takes on disk (stems and renders included), as last measured.",
            registry=self.registry,
        )
        used.set_function(used_bytes)
        limit = Gauge(
            "karaoke_cache_limit_bytes",
            "The result cache's size limit (pool.cache_max_bytes).",
            registry=self.registry,
        )
        limit.set(limit_bytes)

    def set_loop_lag(self, seconds: float) -> None:
        """The event loop's worst recent lag (fed by ``bot.ops.health.LoopLagMonitor``)."""
        self._loop_lag.set(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of this object's registry."""
        return generate_latest(self.registry)


def cuda_memory_readers(device: torch.device) -> dict[str, GpuMemoryReader] | None:
    """Readers for :class:`Metrics` on a CUDA device; None on any other device.

    ``reserved`` is what torch's caching allocator holds (close to what nvidia-smi
    shows for the process); ``allocated`` is what live tensors use inside it.
    """
    import torch

    if device.type != "cuda":
        return None
    return {
        "allocated": lambda: float(torch.cuda.memory_allocated(device)),
        "reserved": lambda: float(torch.cuda.memory_reserved(device)),
    }
