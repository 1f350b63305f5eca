"""The karaoke video itself: a background, the words drawn by libass, the instrumental as
AAC, coded with libx264 into an MP4 that fits the chat's limit.

* The background is the song's cover art (already re-encoded by
  ``separation.video.cover``), scaled to fill the frame, blurred and darkened once and
  then repeated, so the words stay readable; or a calm colour (lavfi ``color``).
* libass draws the ASS (``separation.video.ass``) with our fonts only
  (``separation.video.fonts``: the fontconfig file goes into ffmpeg's environment).
* libx264 with ``-tune stillimage``, a fast preset, a ten-second GOP, yuv420p (what
  phones play) and ``+faststart`` (chats preview the video before it is all there);
  bitrates from ``separation.video.budget``; ``-threads`` is the caller's CPU budget.
* The video lasts exactly the song (``-t``): the colour source and the cut are both the
  song's duration, so picture and sound end together.

The inputs are our own files, but the words in the ASS are a stranger's: the run goes
through ``separation.audio.sandbox.run_sandboxed`` for its deadline and its memory and
file-size limits, and the file is written under a temporary name, checked against the
size limit and only then renamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from separation.audio.ffmpeg import stderr_tail
from separation.audio.ffmpeg_args import Stream, command_line, file_url, input_stream
from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import InputLimitError, OutputTooLargeError, VideoRenderError
from separation.video.budget import VideoBitrates, choose_bitrates
from separation.video.fonts import FontSet
from separation.video.request import VideoLook

logger = logging.getLogger(__name__)

GOP_SECONDS = 10
PRESET = "veryfast"
"""Fast enough for a 4-minute song in well under a minute on one core (the benchmark);
slower presets save little on a still picture."""
CRF = 26
BLUR_SIGMA_SHARE = 0.02
"""The cover's blur, as a share of the frame width."""
COVER_BRIGHTNESS = -0.22
_BASE_SECONDS = 60.0
_SECONDS_PER_SONG_SECOND = 2.0
"""The render's deadline: far beyond its measured speed, only a wedged run meets it."""
_MEMORY_BYTES = 2 * 2**30
_SIZE_SLACK_BYTES = 2**20


@dataclass(frozen=True)
class RenderedVideo:
    path: Path
    size_bytes: int
    bitrates: VideoBitrates
    wall_seconds: float
    cpu_seconds: float
    """ffmpeg's own CPU time: the cost, whatever else the machine was doing."""


def render_video(
    *,
    ass: Path,
    fonts: FontSet,
    instrumental: Path,
    output: Path,
    look: VideoLook,
    duration_seconds: float,
    ffmpeg: str,
    max_bytes: int | None,
    threads: int = 1,
    cover: Path | None = None,
) -> RenderedVideo:
    """Render the MP4 at ``output``.

    Raises:
        OutputTooLargeError: it cannot fit ``max_bytes`` (before rendering when the
            bitrates cannot, after it when the file came out too big).
        VideoRenderError: ffmpeg failed or a limit stopped it.
    """
    bitrates = choose_bitrates(duration_seconds, max_bytes)
    partial = output.with_name(output.name + ".part")
    graph = _graph(
        ass=ass, fonts=fonts, instrumental=instrumental, partial=partial, look=look,
        duration_seconds=duration_seconds, bitrates=bitrates, threads=threads, cover=cover,
    )  # fmt: skip
    filter_threads = str(max(1, threads))
    command = command_line(
        ffmpeg, graph, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-filter_threads", filter_threads, "-filter_complex_threads", filter_threads,
        overwrite=True,
    )  # fmt: skip
    limits = ChildLimits(
        wall_seconds=_BASE_SECONDS + _SECONDS_PER_SONG_SECOND * duration_seconds,
        memory_bytes=_MEMORY_BYTES,
        file_bytes=(max_bytes or 2**31) + _SIZE_SLACK_BYTES,
    )
    try:
        run = run_sandboxed(command, limits, what="video", environment=fonts.environment())
    except InputLimitError as exc:
        partial.unlink(missing_ok=True)
        raise VideoRenderError(f"the video render was stopped: {exc.detail}") from exc
    if run.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise VideoRenderError("ffmpeg could not render the video", stderr=stderr_tail(run.stderr))
    size = partial.stat().st_size
    if max_bytes is not None and size > max_bytes:
        partial.unlink()
        raise OutputTooLargeError(
            duration_seconds=duration_seconds,
            budget_bytes=max_bytes,
            min_bitrate=bitrates.audio_kbps + bitrates.video_kbps,
        )
    partial.replace(output)
    logger.info(
        "video: %.0f s song in %.1f s, %.2f MB (audio %d kb/s, video <= %d kb/s)",
        duration_seconds, run.wall_seconds, size / 1e6, bitrates.audio_kbps, bitrates.video_kbps,
    )  # fmt: skip
    return RenderedVideo(output, size, bitrates, run.wall_seconds, run.cpu_seconds)


def _graph(
    *,
    ass: Path,
    fonts: FontSet,
    instrumental: Path,
    partial: Path,
    look: VideoLook,
    duration_seconds: float,
    bitrates: VideoBitrates,
    threads: int,
    cover: Path | None,
) -> Stream:
    """The ffmpeg-python graph: background (+ cover) -> ASS -> x264, instrumental -> AAC."""
    size = f"{look.width}x{look.height}"
    colour = "0x" + look.background.lstrip("#")
    seconds = f"{duration_seconds:.3f}"
    picture = input_stream(f"color=c={colour}:s={size}:r={look.fps}:d={seconds}", f="lavfi")
    if cover is not None:
        picture = ffmpeg_python.overlay(picture, _blurred_cover(cover, look))
    picture = picture.filter("ass", filename=str(ass), fontsdir=str(fonts.directory)).filter(
        "format", "yuv420p"
    )
    sound = input_stream(file_url(instrumental))["a:0"]
    return ffmpeg_python.output(
        picture, sound, file_url(partial),
        f="mp4", t=seconds, threads=str(max(1, threads)),
        **{
            "c:v": "libx264", "preset": PRESET, "tune": "stillimage", "crf": str(CRF),
            "maxrate": f"{bitrates.video_kbps}k", "bufsize": f"{bitrates.buffer_kbits}k",
            "g": str(GOP_SECONDS * look.fps), "pix_fmt": "yuv420p", "r": str(look.fps),
            "c:a": "aac", "b:a": f"{bitrates.audio_kbps}k", "ac": "2",
            "movflags": "+faststart",
        },
    )  # fmt: skip


def _blurred_cover(cover: Path, look: VideoLook) -> Stream:
    """The cover, once: scaled to fill the frame, cropped, blurred and darkened (the
    overlay repeats its one frame for the whole song)."""
    image = input_stream(file_url(cover), f="image2", pattern_type="none")
    return (
        image.filter("scale", look.width, look.height, force_original_aspect_ratio="increase")
        .filter("crop", look.width, look.height)
        .filter("gblur", sigma=f"{look.width * BLUR_SIGMA_SHARE:.1f}")
        .filter("eq", brightness=str(COVER_BRIGHTNESS), saturation="0.8")
    )
