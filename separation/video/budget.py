"""How many bits a karaoke video may spend, so that it fits the chat's upload limit.

A karaoke video is a still background with a few lines of text whose colour changes:
x264 (``-tune stillimage``) codes it in very few bits, and the sound track is most of
the file. So the audio gets the best AAC bitrate that leaves the picture its floor, and
the picture is coded at a constant quality with a VBV ceiling (``-maxrate`` and
``-bufsize``), which bounds its size over the whole song whatever the words do. The
file's size is checked after the render too (``separation.video.render``).

Measured on a 5-minute song (``benchmarks/video_benchmark.py``, 854x480 at 15 fps): the
picture used 35-45 kb/s (colour or cover background). Discord's 10 MiB gives 128 kb/s
AAC and a 126 kb/s ceiling (6.1-6.3 MB written); Telegram's 50 MB gives 192 kb/s and the
800 kb/s ceiling (8.5-8.7 MB written). The ceiling, not the typical use, is what the
plan counts, so a busy picture still fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from separation.errors import OutputTooLargeError

AUDIO_BITRATES_KBPS = (192, 160, 128, 112, 96, 80, 64)
"""AAC bitrates, best first; below 64 kb/s stereo AAC sounds broken."""
MIN_VIDEO_KBPS = 60
"""The picture's floor: below it the filling words smear at 854x480."""
MAX_VIDEO_KBPS = 800
"""The picture's ceiling when the budget is loose (a still image needs far less)."""
GENEROUS_AUDIO_KBPS = 128
"""Above this, the audio takes bits only where the picture keeps twice its floor."""
_SAFETY = 0.93
"""VBV allows short overshoots (one buffer's worth) and rounding; plan below the limit."""
_CONTAINER_BYTES = 96 * 1024
_CONTAINER_SHARE = 0.01
"""MP4's index (one entry per audio and video frame) and headers."""


@dataclass(frozen=True)
class VideoBitrates:
    audio_kbps: int
    video_kbps: int
    """The picture's VBV ceiling (``-maxrate``)."""

    @property
    def buffer_kbits(self) -> int:
        """``-bufsize``: two seconds at the ceiling."""
        return 2 * self.video_kbps


def choose_bitrates(duration_seconds: float, max_bytes: int | None) -> VideoBitrates:
    """The bitrates of a video of ``duration_seconds`` that fits ``max_bytes``.

    Args:
        duration_seconds: the song's length (the video's).
        max_bytes: the chat's upload limit; None: no limit (the command line).

    Raises:
        OutputTooLargeError: even the lowest audio bitrate and the picture's floor would
            not fit.
    """
    if max_bytes is None:
        return VideoBitrates(AUDIO_BITRATES_KBPS[0], MAX_VIDEO_KBPS)
    usable = max_bytes * _SAFETY / (1 + _CONTAINER_SHARE) - _CONTAINER_BYTES
    total_kbps = usable * 8 / 1000 / max(duration_seconds, 1.0)
    for audio in AUDIO_BITRATES_KBPS:
        video = total_kbps - audio
        floor = MIN_VIDEO_KBPS * (2 if audio > GENEROUS_AUDIO_KBPS else 1)
        if video >= floor:
            return VideoBitrates(audio, int(min(video, MAX_VIDEO_KBPS)))
    raise OutputTooLargeError(
        duration_seconds=duration_seconds,
        budget_bytes=max_bytes,
        min_bitrate=AUDIO_BITRATES_KBPS[-1] + MIN_VIDEO_KBPS,
    )
