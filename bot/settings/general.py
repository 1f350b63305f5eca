"""``[general]`` and ``[health]``: where the process keeps its files, how it logs, and
the HTTP endpoints an orchestrator or Prometheus watches."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from bot.settings.base import Section


class GeneralSettings(Section):
    """Where the bot keeps its files, and how it logs."""

    data_dir: Path = Path("data")
    """Database, uploads, the result cache and temporary job folders live below this."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least severe log lines written (``-v`` on the command line means DEBUG)."""
    log_json: bool = False
    """One JSON object per log line (for log collectors) instead of plain text."""
    ffmpeg_path: str | None = None
    """An ffmpeg binary; default: the one on PATH, else the one bundled by imageio-ffmpeg."""


class HealthSettings(Section):
    """The HTTP health and metrics endpoints (``bot.ops.health``)."""

    enabled: bool = False
    """Serve /healthz, /readyz and /metrics over HTTP (for Docker, Kubernetes, Prometheus)."""
    host: str = "127.0.0.1"
    """127.0.0.1 keeps the endpoints private to the machine; 0.0.0.0 inside a container."""
    port: int = Field(default=9108, ge=0, lt=65536)
    """The port of the health server."""
    max_loop_lag_seconds: float = Field(default=2.0, gt=0)
    """/healthz fails when the event loop was this late: something blocked the bot."""
