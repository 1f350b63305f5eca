"""Finding and running ffmpeg, and reading a file's header without ffprobe.

ffprobe is not always installed (imageio-ffmpeg ships ffmpeg alone), so the cheap look at
an input is ``ffmpeg -i FILE`` with no output: ffmpeg prints the container's duration,
streams and tags to stderr after reading only the header, then exits. That is enough to
refuse a three-hour file in milliseconds instead of decoding it.

ffmpeg is always run with an argument list, never through a shell, and the input path
is always one we created (see ``separation.workdir``), never a name a user chose. An
upload is only ever opened through ``separation.sandbox``, which restricts what ffmpeg
may open and use. Command lines with an output are built with ffmpeg-python and run by
our own code (``separation.ffmpeg_args`` says why); the probe has none and is written
out by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from separation.errors import FFmpegNotFoundError
from separation.sandbox import ChildLimits, run_ffmpeg, untrusted_input_args

logger = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*Duration:\s*(?:(\d+):(\d+):(\d+(?:\.\d+)?)|N/A)", re.MULTILINE)
_AUDIO_STREAM = re.compile(
    r"^\s*Stream #\d+:\d+.*?: Audio: (?P<codec>[^,\s]+)[^,]*, (?P<rate>\d+) Hz, "
    r"(?P<layout>[^,]+)",
    re.MULTILINE,
)
_METADATA_LINE = re.compile(r"^\s{4,}(?P<key>[A-Za-z0-9_ -]+?)\s*: (?P<value>.*)$")


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
    """What ffmpeg says about a file from its header alone."""

    duration_seconds: float | None
    """None when the container does not say (streams, some raw formats)."""
    duration_is_estimate: bool
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    tags: dict[str, str] = field(default_factory=dict)
    opened: bool = True
    """False when ffmpeg could not open the input at all (not a media file, or a format
    the sandbox does not allow)."""
    refusal: str = ""
    """ffmpeg's reason when it did not open the input (for the log, never the user)."""


def _channels_from_layout(layout: str) -> int | None:
    layout = layout.strip()
    if layout == "mono":
        return 1
    if layout == "stereo":
        return 2
    match = re.match(r"(\d+) channels", layout)
    if match:
        return int(match.group(1))
    match = re.match(r"(\d+)\.(\d+)", layout)  # 5.1, 7.1(wide), 2.1 ...
    if match:
        return int(match.group(1)) + int(match.group(2))
    return None


def _parse_tags(stderr: str) -> dict[str, str]:
    """Tags of the container and of the first audio stream (Ogg keeps them on the stream)."""
    tags: dict[str, str] = {}
    in_metadata = False
    audio_streams_seen = 0
    for line in stderr.splitlines():
        stripped = line.strip()
        if stripped.startswith("Stream #"):
            in_metadata = False
            if ": Audio:" in stripped:
                audio_streams_seen += 1
            continue
        if stripped == "Metadata:":
            in_metadata = audio_streams_seen <= 1
            continue
        if not in_metadata:
            continue
        match = _METADATA_LINE.match(line)
        if match is None:
            if not line.startswith("      "):
                in_metadata = False
            continue
        key = match.group("key").strip().lower()
        if key and key not in tags:
            tags[key] = match.group("value").strip()
    return tags


def parse_probe_output(stderr: str) -> ProbeResult:
    """Parse the banner ``ffmpeg -i FILE`` writes to stderr."""
    opened = "Input #0" in stderr
    duration: float | None = None
    match = _DURATION.search(stderr)
    if match and match.group(1) is not None:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    audio = _AUDIO_STREAM.search(stderr)
    return ProbeResult(
        duration_seconds=duration,
        duration_is_estimate="Estimating duration from bitrate" in stderr,
        has_audio=audio is not None,
        audio_codec=audio.group("codec") if audio else None,
        sample_rate=int(audio.group("rate")) if audio else None,
        channels=_channels_from_layout(audio.group("layout")) if audio else None,
        tags=_parse_tags(stderr) if opened else {},
        opened=opened,
    )


def probe(path: Path, *, ffmpeg: str, limits: ChildLimits) -> ProbeResult:
    """Read ``path``'s header with ffmpeg (no decoding: not even an attached picture).

    Raises:
        InputLimitError: the probe ran past ``limits`` (a hostile file).
    """
    # Hand-written: a probe has no output, and ffmpeg-python compiles only a graph with one
    # (see separation.ffmpeg_args). Without -loglevel: the header is what ffmpeg logs.
    command = [ffmpeg, "-hide_banner", "-nostdin", *untrusted_input_args(ffmpeg, path)]
    run = run_ffmpeg(command, limits, what="probe")
    result = parse_probe_output(run.stderr)
    if not result.opened:
        return dataclasses.replace(result, refusal=_refusal(run.stderr))
    return result


def _refusal(stderr: str) -> str:
    """ffmpeg's reason for not opening a file; the sandbox's own refusal when it is one."""
    lines = stderr.strip().splitlines()
    sandbox = [line for line in lines if "whitelist" in line]
    return stderr_tail("\n".join(sandbox[:1] or lines[-2:]))


def stderr_tail(stderr: bytes | str, lines: int = 4) -> str:
    """The last few lines of ffmpeg's stderr, for logs and error details."""
    text = stderr.decode("utf-8", errors="replace") if isinstance(stderr, bytes) else stderr
    return " | ".join(text.strip().splitlines()[-lines:])
