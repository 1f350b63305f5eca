"""Karaoke videos for tests: timed lyrics made in code, videos rendered by the real
renderer, and frames and streams read back (pixels compared, no OCR)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, LyricWord, Timing
from separation.video.ass import write_karaoke_ass
from separation.video.fonts import prepare_fonts
from separation.video.render import RenderedVideo, render_video
from separation.video.request import VideoLook


def timed_line(*words: tuple[str, float, float]) -> LyricLine:
    """A line whose words have their own times: ``("Hello ", 2.0, 2.4), ...``."""
    timed = tuple(LyricWord(text, start, end) for text, start, end in words)
    return LyricLine("".join(text for text, _, _ in words), timed[0].start, timed[-1].end, timed)


def word_lyrics(*lines: LyricLine) -> Lyrics:
    return Lyrics(lines, Timing.WORD, LyricsSource.USER)


def line_lyrics(*lines: tuple[str, float, float | None]) -> Lyrics:
    """Lyrics timed by line only (LRC): ``("text", start, end)``."""
    return Lyrics(
        tuple(LyricLine(text, start, end) for text, start, end in lines),
        Timing.LINE,
        LyricsSource.USER,
    )


def render_lyrics(
    lyrics: Lyrics,
    song: Path,
    folder: Path,
    ffmpeg: str,
    *,
    duration_seconds: float,
    look: VideoLook | None = None,
    title: str = "A Song",
    artist: str | None = "Nobody",
    max_bytes: int | None = None,
    cover: Path | None = None,
) -> RenderedVideo:
    """ASS + render, exactly as ``make_karaoke_video`` does after parsing."""
    look = look or VideoLook()
    fonts = prepare_fonts(folder, font=look.font)
    ass = folder / "karaoke.ass"
    write_karaoke_ass(
        lyrics, ass, look=look, title=title, artist=artist,
        duration_seconds=duration_seconds, font_family=fonts.family,
    )  # fmt: skip
    return render_video(
        ass=ass, fonts=fonts, instrumental=song, output=folder / "karaoke.mp4", look=look,
        duration_seconds=duration_seconds, ffmpeg=ffmpeg, max_bytes=max_bytes, cover=cover,
    )  # fmt: skip


def frame_at(video: Path, ffmpeg: str, seconds: float, look: VideoLook) -> np.ndarray:
    """The frame shown at ``seconds`` as an (height, width, 3) RGB array."""
    raw = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", f"{seconds:.3f}", "-i", str(video),
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(look.height, look.width, 3)


def near(frame: np.ndarray, colour: str, tolerance: int = 60) -> np.ndarray:
    """A mask of the pixels within ``tolerance`` (per channel) of ``#rrggbb``."""
    value = colour.lstrip("#")
    target = np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)
    return bool_mask(np.abs(frame.astype(np.int16) - target).max(axis=2) <= tolerance)


def bool_mask(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=bool)


@dataclass(frozen=True)
class StreamTimes:
    video_seconds: float
    audio_seconds: float
    video_frames: int


def stream_times(video: Path) -> StreamTimes:
    """How long each stream of ``video`` lasts, from its decoded frames (the last video
    frame lasts one frame period)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        period = 1 / float(stream.average_rate or 1)
        times = [float(frame.time or 0.0) for frame in container.decode(stream)]
    with av.open(str(video)) as container:
        audio_end = 0.0
        for frame in container.decode(audio=0):
            audio_end = float(frame.time or 0.0) + frame.samples / frame.sample_rate
    return StreamTimes(times[-1] + period, audio_end, len(times))
