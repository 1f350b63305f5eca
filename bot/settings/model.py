"""``[model]`` and ``[pool]``: which Demucs model runs where, and the worker pool that
batches songs into its forward passes (``separation.model``, ``separation.pool``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from bot.settings.base import Section
from separation.model.precision import PrecisionSetting


class ModelSettings(Section):
    """The separation model and the device it runs on."""

    name: str = "htdemucs"
    """htdemucs (fast default), htdemucs_ft (best quality, ~4x the time), htdemucs_6s (adds
    guitar and piano), mdx_extra, or a name from ``repo``."""
    repo: Path | None = None
    """A local model folder in Demucs' --repo layout (SIG.th files and NAME.yaml bags)."""
    device: str = "auto"
    """auto (CUDA if available, else CPU), cpu, cuda or cuda:N."""
    cpu_threads: int = Field(default=0, ge=0)
    """Threads torch may use on CPU; 0 keeps torch's default (one per core)."""
    shifts: int = Field(default=0, ge=0, le=20)
    """Random time shifts averaged per song: better quality, N times the work."""
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    """Overlap between model segments, as a fraction of a segment."""
    precision: PrecisionSetting = "auto"
    """The forward pass's number format: "auto" (bf16 where the CPU or GPU computes it
    natively, fp32 elsewhere), "fp32", "bf16" or "fp16" (see ``separation.model.precision``)."""
    allow_download: bool = True
    """Fetch missing weights from the HuggingFace hub once, at the first start (needs
    internet); false, or HF_HUB_OFFLINE=1 (as in the Docker image), never downloads."""

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("device must be auto, cpu, cuda or cuda:N")


class PoolSettings(Section):
    """The worker pool (``separation.pool``): workers, batching, limits, result cache."""

    devices: list[str] = Field(default_factory=list)
    """One worker per entry ("cpu", "cuda:0", "cuda:1"; repeat one for two workers on it);
    empty: one worker on ``model.device``."""
    batch_size: int = Field(default=0, ge=0)
    """Segments per forward pass, from any songs; 0: measured by a sweep at start on a GPU
    (``separation.model.batch_sweep``), 1 on CPU."""
    max_running_jobs: int = Field(default=0, ge=0)
    """Songs separated at once (their segments share batches); 0: batch size x workers,
    at least 2."""
    max_queued_jobs: int = Field(default=100, ge=1)
    """Beyond this many waiting songs, new ones are refused with a "busy" message."""
    max_jobs_per_user: int = Field(default=3, ge=1)
    """Queued plus running songs of one user."""
    max_queued_renders: int = Field(default=10, ge=1)
    """Re-renders (karaoke controls pressed) queued or running at once, all users
    together; beyond it a press gets "I'm busy with other songs right now, try again in
    N s". Songs always go before re-renders, whatever this says."""
    job_timeout_seconds: float = Field(default=1800.0, gt=0)
    """A song still running after this many seconds (queueing excluded) is stopped."""
    shutdown_timeout_seconds: float = Field(default=60.0, ge=0)
    """On shutdown, running songs get this many seconds to finish and be delivered."""
    cache_dir: Path | None = None
    """Finished results; default <data_dir>/cache."""
    cache_max_bytes: int = Field(default=5 * 1024**3, ge=0)
    """What the cache folder may take on disk, everything in it counted: results, the
    lossless stems kept for key/tempo re-renders (several times a song's MP3s), renders,
    manifests, results being written."""
    cache_max_age_hours: float = Field(default=24.0, gt=0)
    """Results are users' music: not kept (nor served) longer than this."""
    cache_min_age_minutes: float = Field(default=60.0, ge=0)
    """Songs used this recently are not evicted to make room for renders (renders are
    evicted first: they take seconds to redo), so one user's key/tempo presses cannot
    flush another user's song and stop its buttons. Only when songs this young alone
    fill ``cache_max_bytes`` does the oldest make room for a new song (logged: the limit
    is too small). A result being sent is kept for as long as that takes whatever this
    says (it is pinned)."""

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, value: list[str]) -> list[str]:
        for device in value:
            if device not in ("cpu", "cuda") and not (
                device.startswith("cuda:") and device[5:].isdigit()
            ):
                raise ValueError(f"device {device!r} must be cpu, cuda or cuda:N")
        return value
