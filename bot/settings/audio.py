"""``[audio]`` and ``[output]``: what an upload may be, and what the results are.

The limits on uploads protect the machine from hostile files (see the Privacy page of
the documentation); the output settings are what users receive.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bot.settings.base import Section
from separation.audio.encode import OutputFormat, StemMode


class AudioSettings(Section):
    """Limits on what users send (see the Privacy and Troubleshooting pages)."""

    max_duration_seconds: float = Field(default=900.0, gt=0)
    """Longest song, by its decoded length (a header may lie); decoding stops past it."""
    max_input_bytes: int = Field(default=200_000_000, gt=0)
    """Largest input file accepted, in bytes; bigger uploads are refused before download."""
    ffmpeg_memory_mb: int = Field(default=512, ge=128)
    """Address space of each ffmpeg run on an upload; a normal decode needs under 100."""
    probe_timeout_seconds: float = Field(default=20.0, gt=0)
    """Reading a file's header takes milliseconds; a probe still running then is stopped."""
    max_parallel_downloads: int = Field(default=0, ge=0)
    """Uploads downloaded at once across all users (0: four per CPU core, at least 8)."""
    max_parallel_probes: int = Field(default=0, ge=0)
    """Uploads' headers checked at once across all users (0: one per CPU core, at least 2)."""
    header_reader_python: Path | None = None
    """The Python that reads uploads' headers with PyAV (``separation.audio.probe``); default:
    the one running the bot. For a bot not run by a Python that has PyAV."""


class OutputSettings(Section):
    """The files a user gets back."""

    format: OutputFormat = "mp3"
    """mp3, opus, flac (24-bit) or wav (32-bit float)."""
    stems: StemMode = "two"
    """two (instrumental + vocals) or four (every stem the model has)."""
    mp3_bitrate: int = Field(default=320, ge=32, le=320)
    """MP3 bitrate in kb/s (CBR) when the platform's upload limit allows it."""
    min_mp3_bitrate: int = Field(default=96, ge=32, le=320)
    """Below this bitrate a result is not worth sending; the user is told it cannot fit."""
