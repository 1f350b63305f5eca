"""Finding ffmpeg, and what a file's header says (:class:`ProbeResult`).

ffmpeg is always run with an argument list, never through a shell, and the input path
is always one we created (see ``separation.workdir``), never a name a user chose. An
upload is only ever opened through ``separation.audio.sandbox``, which restricts what ffmpeg
may open and use. Command lines are built with ffmpeg-python and run by our own code
(``separation.audio.ffmpeg_args`` says why). The header is read by ``separation.audio.probe``, not
by ffmpeg's text banner (issue 20 says why).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from functools import cache

from separation.errors import FFmpegNotFoundError


@cache
def find_ffmpeg(configured: str | None = None) -> str:
    """Return an ffmpeg executable: the configured one, the one on PATH, or imageio-ffmpeg's.

    Raises:
        FFmpegNotFoundError: none of them exists.
    """
    if configured:
        resolved = shutil.which(configured)
        if resolved is None:
            raise FFmpegNotFoundError(f"ffmpeg not found at configured path {configured!r}")
        return resolved
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        bundled: str = imageio_ffmpeg.get_ffmpeg_exe()  # imageio-ffmpeg has no type hints
        return bundled
    except (ImportError, RuntimeError) as exc:
        raise FFmpegNotFoundError(
            "ffmpeg not found: install it (apt-get install ffmpeg) or pip install imageio-ffmpeg"
        ) from exc


@dataclass(frozen=True)
class ProbeResult:
    """What a file's header says, read without decoding (``separation.audio.probe``)."""

    duration_seconds: float | None
    """None when the container does not say (streams, some raw formats)."""
    duration_is_estimate: bool
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    tags: dict[str, str] = field(default_factory=dict)
    """The container's and the first audio stream's tags, names lower-cased: a stranger's
    text, bounded in number and length (``separation.audio.header_reader``)."""
    has_picture: bool | None = None
    """Whether the file holds a picture stream (cover art, never decoded by the probe);
    None: not known (a probe of an older release)."""
    opened: bool = True
    """False when libavformat could not open the input at all (not a media file, or a
    format the sandbox does not allow)."""
    refusal: str = ""
    """The reason it was not opened (for the log, never the user)."""


def stderr_tail(stderr: bytes | str, lines: int = 4) -> str:
    """The last few lines of ffmpeg's stderr, for logs and error details."""
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    return " | ".join(text.strip().splitlines()[-lines:])
