"""The karaoke video's songs in pool and fleet tests (issue 24): a clip with words in
its LYRICS tag and a cover picture, and a record of what the pool handed the real
video maker (``separation.video.karaoke.make_karaoke_video``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import separation.video.karaoke as karaoke
from separation.lyrics.model import Timing
from separation.video.request import VideoRequest

LRC = "[00:00.50]Hello little\n[00:01.80]world of songs\n"


def tagged_song(
    path: Path, ffmpeg: str, source: Path, *, lyrics: str | None, cover: bool, seconds: float = 3
) -> Path:
    """``seconds`` of ``source`` as FLAC, with ``lyrics`` in its LYRICS tag and a red
    attached picture when ``cover``."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-t", str(seconds), "-i", str(source)]
    if cover:
        command += ["-f", "lavfi", "-i", "color=c=red:s=96x96:d=1", "-map", "0:a", "-map", "1"]
        command += ["-c:v", "mjpeg", "-disposition:v", "attached_pic"]
    if lyrics is not None:
        command += ["-metadata", f"LYRICS={lyrics}"]
    subprocess.run([*command, "-y", str(path)], check=True)
    return path


@dataclass
class VideoCalls:
    """What the pool asked of the video maker, one dict of keyword arguments per call."""

    calls: list[dict[str, Any]] = field(default_factory=list)


def record_video_maker(monkeypatch: pytest.MonkeyPatch) -> VideoCalls:
    """The real ``make_karaoke_video``, recording every call the pool makes to it (the
    pool looks it up in its module when a video is rendered)."""
    recorded = VideoCalls()
    real = karaoke.make_karaoke_video

    def recording(video: VideoRequest, **arguments: Any) -> Timing:
        recorded.calls.append({"video": video, **arguments})
        return real(video, **arguments)

    monkeypatch.setattr(karaoke, "make_karaoke_video", recording)
    return recorded
